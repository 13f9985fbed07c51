import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """The request type views see: django-htmx's middleware adds `htmx`."""

    htmx: HtmxDetails


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. Behind TRUSTED_PROXY_COUNT proxies (load balancer, CDN) each proxy
    appends the address it received the request from to X-Forwarded-For, so the client is that many
    entries from the end; anything further left was written by the client and proves nothing. A
    request that did not pass through all of them (too few entries) is taken at its REMOTE_ADDR.
    django-axes (sign-in lock-out), the audit log and the security log all use this function."""
    address = request.META.get("REMOTE_ADDR") or ""
    trusted = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if trusted:
        forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [entry for entry in forwarded if entry]
        if len(forwarded) >= trusted:
            address = forwarded[-trusted]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def parse_count(text: str, *, max_digits: int = 18) -> int | None:
    """A non-negative whole number typed or sent as text (an id, an index, a page link), or None.

    str.isdigit() also accepts digits such as "²" that int() refuses, and an id longer than 18
    digits would overflow PostgreSQL's bigint: both used to end in a server error."""
    text = text.strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdecimal()):
        return None
    return int(text)
