"""The string formats config schemas may use, each checked by our own code.

jsonschema only checks some formats when optional packages are installed (`uri` needs rfc3987,
`hostname` needs fqdn) and silently accepts any value otherwise. A config must never accept a bad
URL because a package happens to be missing, so every supported format is implemented here and
`check_schema_supported` refuses any other format.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from jsonschema import FormatChecker

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
# RFC 5322 dot-atom local part; quoted local parts ("a b"@example.com) are deliberately refused.
_EMAIL_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")

FORMAT_MESSAGES: dict[str, str] = {
    "email": "Enter a valid email address such as name@example.com.",
    "uri": "Enter a full URL such as https://example.com/path.",
    "hostname": "Enter a valid hostname such as example.com.",
    "ipv4": "Enter a valid IPv4 address such as 192.0.2.10.",
    "ipv6": "Enter a valid IPv6 address such as 2001:db8::10.",
    "cidr": "Enter a network in CIDR notation such as 203.0.113.0/24 or 2001:db8::/32.",
}

SUPPORTED_FORMATS = frozenset(FORMAT_MESSAGES)


def is_hostname(value: str) -> bool:
    """RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens."""
    if not value or len(value) > 253:
        return False
    labels = value.split(".")
    if not all(_HOSTNAME_LABEL.match(label) for label in labels):
        return False
    # An all-digit last label means an IP address was typed where a name belongs.
    return not labels[-1].isdigit()


def is_absolute_uri(value: str) -> bool:
    """A URL with a scheme and a host, such as https://example.com/hook; no spaces."""
    if _WHITESPACE_OR_CONTROL.search(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number in range)
    except ValueError:
        return False
    return bool(_URI_SCHEME.match(parts.scheme) and parts.netloc and parts.hostname)


def is_email(value: str) -> bool:
    """A plain mailbox address: name@domain, with a dotted host name as the domain."""
    local_part, at, domain = value.rpartition("@")
    if not at or len(local_part) > 64 or not _EMAIL_LOCAL_PART.match(local_part):
        return False
    return "." in domain and is_hostname(domain)


def is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def is_ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def is_cidr(value: str) -> bool:
    """An IPv4 or IPv6 network written address/prefix, with no host bits set.

    Strict on purpose: whatever is accepted here must parse with `ipaddress.ip_network(value)` and its
    default strict=True, which is how the run engine reads these settings. A bare address without a
    prefix length is refused too, so nobody mistakes a /32 for something wider.
    """
    if "/" not in value:
        return False
    try:
        ipaddress.ip_network(value)
    except ValueError:
        return False
    return True


def cidr_suggestion(value: str) -> str | None:
    """The network the user probably meant when they typed an address inside it (203.0.113.7/24)."""
    if "/" not in value:
        return None
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return None


_CHECKS = {
    "email": is_email,
    "uri": is_absolute_uri,
    "hostname": is_hostname,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "cidr": is_cidr,
}


def _build_format_checker() -> FormatChecker:
    # Starts empty so no format jsonschema knows about slips through unchecked or differently checked.
    checker = FormatChecker(formats=())
    for format_name, check in _CHECKS.items():
        # Formats only constrain strings; a wrong type is reported by the `type` keyword instead.
        checker.checks(format_name)(lambda value, check=check: not isinstance(value, str) or check(value))
    return checker


config_format_checker = _build_format_checker()
