"""Which URLs the console may POST to: no loopback, private, link-local, metadata or other internal targets.

Two checks, because a name that is safe when an operator saves it can point somewhere else later:

- `check_url_shape` runs when a flow is saved and again before every send. It needs no DNS: scheme,
  host, port, user-info tricks, IP literals in every spelling a resolver accepts, and names that only
  ever mean something internal.
- `resolve_and_check` runs at send time: it resolves the name, refuses if ANY address is blocked (a
  name with one public and one private record must not be a coin toss), and returns the address to
  connect to, so the connection cannot be re-resolved to a different address (DNS rebinding).

On-prem installs that must reach an internal receiver list its networks in the setting
`WEBHOOK_ALLOWED_PRIVATE_NETWORKS` (CIDRs). Cloud metadata addresses and link-local addresses stay
blocked even then, in every IPv6 form that carries an IPv4 address (IPv4-mapped, SIIT,
IPv4-compatible, NAT64, 6to4, Teredo): an over-broad entry such as 0.0.0.0/0 or ::/0 must not hand
out the host's cloud credentials.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Same call shape as socket.getaddrinfo; tests pass a fake to simulate what a name resolves to.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

# Ordered: the first match names the range in the message, so narrower ranges come before wider ones.
_BLOCKED_RANGES: list[tuple[IPNetwork, str]] = [
    (ipaddress.ip_network(cidr), label)
    for cidr, label in [
        ("0.0.0.0/8", '"this network", which reaches the local machine'),
        ("10.0.0.0/8", "private network"),
        ("100.64.0.0/10", "carrier-grade NAT shared address space"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private network"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation, TEST-NET-1"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private network"),
        ("198.18.0.0/15", "network benchmarking"),
        ("198.51.100.0/24", "documentation, TEST-NET-2"),
        ("203.0.113.0/24", "documentation, TEST-NET-3"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified address"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("::/8", "reserved IPv6, including obsolete IPv4 embeddings"),
        ("100::/64", "discard-only"),
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF protocol assignments, including Teredo"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "SRv6 segment identifiers"),
        ("fc00::/7", "unique local addresses, the IPv6 private network"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "deprecated site-local"),
        ("ff00::/8", "multicast"),
    ]
]

# Instance metadata services hand out cloud credentials. Most sit in link-local space already; they are
# listed so the message says what they are, and so that no allow-list and no IPv6 spelling admits them.
CLOUD_METADATA_ADDRESSES: dict[IPAddress, str] = {
    ipaddress.ip_address(address): label
    for address, label in [
        (
            "169.254.169.254",
            "instance metadata of AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean, Hetzner and others",
        ),
        ("169.254.170.2", "AWS container credentials"),
        ("169.254.170.23", "AWS EKS Pod Identity credentials"),
        ("169.254.0.23", "Tencent Cloud instance metadata"),
        ("100.100.100.200", "Alibaba Cloud instance metadata"),
        ("168.63.129.16", "Azure platform wire server"),
        ("192.0.0.192", "Oracle Cloud instance metadata"),
        ("169.254.42.42", "Scaleway instance metadata"),
        ("fd00:ec2::254", "AWS instance metadata over IPv6"),
        ("fd00:ec2::23", "AWS EKS Pod Identity credentials over IPv6"),
        ("fd20:ce::254", "GCP instance metadata over IPv6"),
        ("fe80::a9fe:a9fe", "OpenStack instance metadata over IPv6"),
        ("fd00:a9fe:a9fe::1", "Akamai (Linode) metadata service over IPv6"),
        ("fd00:c1::a9fe:a9fe", "Oracle Cloud instance metadata over IPv6"),
        ("fd00:42::42", "Scaleway instance metadata over IPv6"),
    ]
}
# Where metadata services live, so never allowed either: a service moved within them stays refused.
_NEVER_ALLOWED_RANGES: list[tuple[IPNetwork, str]] = [
    (ipaddress.ip_network("169.254.0.0/16"), "link-local"),
    (ipaddress.ip_network("fe80::/10"), "link-local"),
]

_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
_SIIT_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# RFC 6052: the prefix lengths an IPv4-embedded IPv6 address (NAT64) may have.
_RFC6052_PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)

# Suffixes that only ever name something inside a network, or this machine.
_BLOCKED_NAME_SUFFIXES: list[tuple[str, str]] = [
    ("localhost", "names under .localhost point at this machine"),
    ("localdomain", "names under .localdomain point at this machine"),
    ("local", "names under .local are multicast DNS names of the local network"),
    ("internal", "names under .internal are internal network names, cloud metadata services among them"),
    ("home.arpa", "names under .home.arpa are home network names"),
]
_CLOUD_METADATA_NAMES = {"metadata.google.internal", "metadata.goog", "metadata.azure.com"}

_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[0-9]{1,5}")
# Keeps what is already percent-encoded and the characters RFC 3986 allows in a path and query.
_PATH_SAFE = "!$%&'()*+,/:;=?@~"


class UnsafeURL(ValueError):
    """The URL or an address it resolves to may not be contacted; the message is written for operators."""


class TargetUnresolvable(Exception):
    """The host name did not resolve. Not a safety refusal: DNS may answer on a later attempt."""


@dataclass(frozen=True)
class ParsedTarget:
    """A URL that passed the shape check, taken apart into what the HTTP client needs."""

    scheme: str
    # ASCII (IDNA), lower case, no trailing dot, IPv6 without brackets.
    host: str
    port: int
    # Path and query as sent on the request line; never empty, the fragment dropped.
    request_target: str
    literal_address: IPAddress | None

    @property
    def host_for_url(self) -> str:
        return f"[{self.host}]" if isinstance(self.literal_address, ipaddress.IPv6Address) else self.host

    @property
    def host_header(self) -> str:
        """The `Host:` value: the name the operator wrote, whatever address we connect to."""
        if self.port == DEFAULT_PORTS[self.scheme]:
            return self.host_for_url
        return f"{self.host_for_url}:{self.port}"

    @property
    def origin(self) -> str:
        """scheme://host[:port] — safe for logs: no path or query, where tokens such as Slack's live."""
        return f"{self.scheme}://{self.host_header}"


@dataclass(frozen=True)
class CheckedTarget:
    """A target whose every resolved address was checked; connect to `pinned_address` only."""

    target: ParsedTarget
    pinned_address: IPAddress
    resolved_addresses: tuple[IPAddress, ...]


def check_url_shape(url: str) -> ParsedTarget:
    """Refuse (UnsafeURL) what can be refused without DNS; return the URL taken apart otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"The URL is too long (at most {MAX_URL_LENGTH} characters).")
    # Parsers disagree on what to strip or keep around whitespace, control and invisible format characters
    # (urlsplit drops tabs and newlines silently; IDNA drops soft hyphens): refuse them instead.
    if any(char.isspace() or unicodedata.category(char) in {"Cc", "Cf"} for char in url):
        raise UnsafeURL("The URL must not contain spaces, control characters or invisible characters.")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise UnsafeURL(f"This is not a valid URL ({error}).") from error
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        if not scheme:
            raise UnsafeURL("The URL must start with https://.")
        raise UnsafeURL(f"Only https:// (or http://) URLs are allowed, not {scheme}:.")
    if not parts.netloc:
        raise UnsafeURL("The URL has no host.")
    if "@" in parts.netloc:
        raise UnsafeURL("User names or passwords in the URL (user@host) are not allowed.")
    if "\\" in parts.netloc:
        raise UnsafeURL("Backslashes are not allowed in the host part of the URL.")
    host_text, port_text = _split_authority(parts.netloc)
    port = _parse_port(port_text, scheme)
    host, literal_address = _parse_host(host_text)
    request_target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=_PATH_SAFE)
    return ParsedTarget(scheme, host, port, request_target, literal_address)


def resolve_and_check(url: str, *, resolver: Resolver | None = None) -> CheckedTarget:
    """Shape-check `url`, resolve its host and refuse if any A/AAAA record is blocked; pick the address to pin.

    `resolver` defaults to socket.getaddrinfo. Raises UnsafeURL (never retry) or TargetUnresolvable (retry).
    """
    target = check_url_shape(url)
    if target.literal_address is not None:
        return CheckedTarget(target, _connectable(target.literal_address), (target.literal_address,))
    resolve = resolver or socket.getaddrinfo
    try:
        records = resolve(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise TargetUnresolvable(f"{target.host} could not be resolved ({reason}).") from error
    addresses: list[IPAddress] = []
    for family, _kind, _proto, _canonical_name, socket_address in records:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            # Link-local IPv6 answers carry a zone ("fe80::1%eth0"); the address decides, not the zone.
            address = ipaddress.ip_address(str(socket_address[0]).split("%", 1)[0])
        except ValueError as error:
            raise UnsafeURL(f"{target.host} resolved to something that is not an IP address.") from error
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetUnresolvable(f"{target.host} has no IPv4 or IPv6 address.")
    for address in addresses:
        reason = blocked_address_reason(address)
        if reason is not None:
            raise UnsafeURL(f"{target.host} resolves to {address}. {reason}")
    return CheckedTarget(target, _connectable(addresses[0]), tuple(addresses))


def blocked_address_reason(address: IPAddress) -> str | None:
    """Why `address` may not be contacted, in words for operators; None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    # Before the allow-list: nothing an operator writes there may open these.
    never_reason = _never_allowed_reason(address)
    if never_reason is not None:
        return never_reason
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        inner_reason = blocked_address_reason(address.ipv4_mapped)
        if inner_reason is None:
            return None
        return f"{inner_reason} ({address} is the IPv4-mapped IPv6 form of {address.ipv4_mapped}.)"
    if _in_allowed_private_networks(address):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded_reason = _embedded_ipv4_reason(address)
        if embedded_reason is not None:
            return embedded_reason or None
    for network, label in _BLOCKED_RANGES:
        if address.version == network.version and address in network:
            return f"Addresses in {network} ({label}) are not allowed."
    # The explicit list covers today's special-purpose registry; Python's own view catches what it misses.
    # is_global alone is not enough: it calls multicast and IPv6 site-local "global".
    special = address.is_multicast or address.is_reserved or address.is_link_local or address.is_loopback
    if isinstance(address, ipaddress.IPv6Address):
        special = special or address.is_site_local
    if special or address.is_private or address.is_unspecified or not address.is_global:
        return f"{address} is not a public internet address, so it is not allowed."
    return None


def _never_allowed_reason(address: IPAddress) -> str | None:
    """The refusal of a metadata or link-local address, also when an IPv6 address carries one."""
    reason = _metadata_reason(address)
    if reason is not None or isinstance(address, ipaddress.IPv4Address):
        return reason
    for embedded, _, form in _embedded_ipv4_forms(address):
        reason = _metadata_reason(embedded)
        if reason is not None:
            return f"{reason} ({form.format(address=address, embedded=embedded)}.)"
    # A NAT64 gateway may use a prefix of its own (RFC 6052 network-specific prefix), which an
    # allow-list entry can cover: a metadata address in any place RFC 6052 allows is refused too.
    for prefix_length in _RFC6052_PREFIX_LENGTHS:
        embedded = _rfc6052_ipv4(address, prefix_length)
        if embedded in CLOUD_METADATA_ADDRESSES:
            reason = _metadata_reason(embedded)
            return f"{reason} ({address} may be {embedded} through a NAT64 gateway with a /{prefix_length} prefix.)"
    return None


def _metadata_reason(address: IPAddress) -> str | None:
    if address in CLOUD_METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address ({CLOUD_METADATA_ADDRESSES[address]}) and is never allowed."
    for network, label in _NEVER_ALLOWED_RANGES:
        if address.version == network.version and address in network:
            return f"Addresses in {network} ({label}) are never allowed: cloud metadata services answer there."
    return None


def _embedded_ipv4_forms(address: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str, str]]:
    """Each IPv4 address `address` carries in a standard form: (the address, which form, how to say
    so as a format string). The never-allowed check reads them all; the ordinary rule some."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    forms: list[tuple[ipaddress.IPv4Address, str, str]] = []
    if address.ipv4_mapped is not None:
        forms.append((address.ipv4_mapped, "mapped", "{address} is the IPv4-mapped IPv6 form of {embedded}"))
    if address in _SIIT_TRANSLATED:
        forms.append((low32, "siit", "{address} is the IPv4-translated (SIIT) form of {embedded}"))
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        forms.append((low32, "compatible", "{address} is the IPv4-compatible IPv6 form of {embedded}"))
    if address in _NAT64_WELL_KNOWN:
        forms.append((low32, "nat64", "{address} is {embedded} through NAT64"))
    if address in _NAT64_LOCAL_USE:
        forms += [
            (_rfc6052_ipv4(address, n), "nat64-local", "{address} may be {embedded} through local-use NAT64")
            for n in (48, 56, 64, 96)
        ]
    if address.sixtofour is not None:
        forms.append((address.sixtofour, "6to4", "{address} embeds {embedded} by 6to4"))
    if address.teredo is not None:
        server, client = address.teredo
        forms += [
            (server, "teredo", "{address} is a Teredo address whose server is {embedded}"),
            (client, "teredo", "{address} is a Teredo address whose client is {embedded}"),
        ]
    return forms


def _rfc6052_ipv4(address: ipaddress.IPv6Address, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address in `address` read as RFC 6052 places it after a prefix of that length
    (right after the prefix, skipping bits 64–71)."""
    packed = address.packed
    places = [index for index in range(prefix_length // 8, 16) if index != 8][:4]
    return ipaddress.IPv4Address(bytes(packed[index] for index in places))


def _embedded_ipv4_reason(address: ipaddress.IPv6Address) -> str | None:
    """For IPv6 forms whose IPv4 address decides (well-known NAT64, 6to4, IPv4-compatible): the
    refusal, "" when allowed outright, None when `address` is none of them. The other forms
    (SIIT, local-use NAT64, Teredo) are judged by their own ranges below."""
    for embedded, kind, form in _embedded_ipv4_forms(address):
        if kind not in ("nat64", "6to4", "compatible"):
            continue
        inner_reason = blocked_address_reason(embedded)
        if inner_reason is not None:
            return f"{inner_reason} ({form.format(address=address, embedded=embedded)}.)"
        if kind == "nat64":
            return ""  # a public address behind the well-known prefix: how IPv6-only networks reach IPv4
        if kind == "compatible":
            return "IPv4-compatible IPv6 addresses (::a.b.c.d) are obsolete and not allowed."
    return None


def allowed_private_networks() -> list[IPNetwork]:
    """The setting WEBHOOK_ALLOWED_PRIVATE_NETWORKS parsed; empty by default."""
    configured = getattr(settings, "WEBHOOK_ALLOWED_PRIVATE_NETWORKS", None) or []
    if isinstance(configured, str):
        configured = [configured]
    networks: list[IPNetwork] = []
    for cidr in configured:
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError as error:
            raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_PRIVATE_NETWORKS: {cidr!r} is not a CIDR.") from error
    return networks


def _in_allowed_private_networks(address: IPAddress) -> bool:
    return any(address.version == network.version and address in network for network in allowed_private_networks())


def _connectable(address: IPAddress) -> IPAddress:
    # An IPv4-mapped address is that IPv4 host; connecting over IPv4 does not depend on dual-stack sockets.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _split_authority(netloc: str) -> tuple[str, str]:
    if netloc.startswith("["):
        closing = netloc.find("]")
        if closing < 0:
            raise UnsafeURL("The IPv6 address in the URL has no closing bracket.")
        rest = netloc[closing + 1 :]
        if rest and not rest.startswith(":"):
            raise UnsafeURL("Unexpected text after the IPv6 address in the URL.")
        return netloc[: closing + 1], rest[1:] if rest else ""
    host_text, _, port_text = netloc.partition(":")
    return host_text, port_text


def _parse_port(port_text: str, scheme: str) -> int:
    if not port_text:
        return DEFAULT_PORTS[scheme]
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise UnsafeURL("The port must be a number from 1 to 65535.")
    return int(port_text)


def _parse_host(host_text: str) -> tuple[str, IPAddress | None]:
    if host_text.startswith("["):
        return _parse_bracketed_ipv6(host_text[1:-1])
    host = host_text.lower()
    if not host.isascii():
        try:
            # IDNA maps look-alikes to ASCII (fullwidth "ｌｏｃａｌｈｏｓｔ", "127。0。0。1"), so every check
            # below sees what the resolver will see.
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as error:
            raise UnsafeURL("The host name is not a valid international domain name.") from error
    # One trailing dot is the fully-qualified spelling of the same name ("localhost.").
    host = host.removesuffix(".")
    if not host:
        raise UnsafeURL("The URL has no host.")
    literal_ipv4 = _parse_legacy_ipv4(host)
    if literal_ipv4 is not None:
        reason = blocked_address_reason(literal_ipv4)
        if reason is not None:
            raise UnsafeURL(reason if host == str(literal_ipv4) else f"{host} is the address {literal_ipv4}. {reason}")
        return str(literal_ipv4), literal_ipv4
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # Resolvers and browsers read a name ending in a number as an IPv4 address; this one is not valid.
        raise UnsafeURL(f"{host} is neither a valid IPv4 address nor a host name.")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise UnsafeURL(f"{host_text} is not a valid host name.")
    _refuse_internal_name(host, labels)
    return host, None


def _parse_bracketed_ipv6(inside: str) -> tuple[str, IPAddress]:
    address_text, has_zone, _zone = inside.partition("%")
    try:
        address = ipaddress.IPv6Address(address_text)
    except ValueError as error:
        raise UnsafeURL(f"[{inside}] is not a valid IPv6 address.") from error
    reason = blocked_address_reason(address)
    if reason is not None:
        raise UnsafeURL(reason)
    if has_zone:
        raise UnsafeURL("IPv6 zone identifiers (%…) only reach this machine's own links and are not allowed.")
    return address.compressed, address


def _parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address inet_aton (and so getaddrinfo and browsers) reads from `host`, or None if it is not numeric.

    Accepts every spelling they accept: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x), the
    last part filling the remaining bytes — "2130706433", "0177.0.0.1", "0x7f.1" and "127.1" are 127.0.0.1.
    """
    parts = host.split(".")
    if len(parts) > 4:
        return None
    values = []
    for part in parts:
        if re.fullmatch(r"0x[0-9a-f]*", part):
            values.append(int(part[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]*", part):
            values.append(int(part, 8))
        elif re.fullmatch(r"[1-9][0-9]*", part):
            values.append(int(part))
        else:
            return None
    *leading, last = values
    if any(value > 255 for value in leading) or last >= 256 ** (4 - len(leading)):
        return None
    number = last
    for position, value in enumerate(leading):
        number += value << (8 * (3 - position))
    return ipaddress.IPv4Address(number)


def _refuse_internal_name(host: str, labels: list[str]) -> None:
    if host in _CLOUD_METADATA_NAMES:
        raise UnsafeURL(f"{host} is a cloud metadata service and is never allowed.")
    for suffix, label in _BLOCKED_NAME_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            raise UnsafeURL(f"{host} is not allowed: {label}.")
    if len(labels) < 2:
        # A single label is completed with the machine's DNS search domains ("metadata" → metadata.google.internal).
        raise UnsafeURL(f"{host} is not a fully qualified host name; use the full name (e.g. hooks.example.com).")
