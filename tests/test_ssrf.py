"""flows_app.outbound.ssrf: which webhook URLs and resolved addresses are refused, and which are accepted."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from flows_app.outbound.ssrf import (
    Resolver,
    TargetUnresolvable,
    UnsafeURL,
    blocked_address_reason,
    check_url_shape,
    resolve_and_check,
)

# (URL, a fragment the operator-facing message must contain)
REFUSED_URLS: list[tuple[str, str]] = [
    # schemes and structure
    ("ftp://example.com/", "not ftp:"),
    ("file:///etc/passwd", "not file:"),
    ("gopher://example.com:70/_GET%20/", "not gopher:"),
    ("javascript:alert(1)", "not javascript:"),
    ("data:text/plain,hello", "not data:"),
    ("dict://example.com:11211/stats", "not dict:"),
    ("example.com/hook", "must start with https://"),
    ("http://", "no host"),
    ("https:///hook", "no host"),
    ("https://:443/hook", "no host"),
    ("", "Enter a URL"),
    ("https://exa mple.com/", "spaces"),
    ("https://example.com/\r\nX-Injected: 1", "control characters"),
    ("https://loc\u00adalhost/", "invisible characters"),
    ("https://example.com:0/", "port must be a number from 1 to 65535"),
    ("https://example.com:65536/", "port must be a number from 1 to 65535"),
    ("https://example.com:8o/", "port must be a number from 1 to 65535"),
    ("https://[::1/", "not a valid URL"),
    # user-info tricks
    ("http://127.0.0.1:80@evil.example/", "user@host"),
    ("http://evil.example@127.0.0.1/", "user@host"),
    ("https://user:pass@hooks.example.com/", "user@host"),
    ("http://evil.example\\@127.0.0.1/", "user@host"),
    # IPv4 loopback in every spelling getaddrinfo accepts
    ("http://127.0.0.1/", "127.0.0.0/8 (loopback)"),
    ("http://127.0.0.1./", "127.0.0.0/8 (loopback)"),
    ("http://2130706433/", "is the address 127.0.0.1"),
    ("http://0177.0.0.1/", "is the address 127.0.0.1"),
    ("http://0x7f.1/", "is the address 127.0.0.1"),
    ("http://0x7f000001/", "is the address 127.0.0.1"),
    ("http://0x7F.0.0.1/", "is the address 127.0.0.1"),
    ("http://127.1/", "is the address 127.0.0.1"),
    ("http://127.0.1/", "is the address 127.0.0.1"),
    ("http://017700000001/", "is the address 127.0.0.1"),
    ("http://127。0。0。1/", "127.0.0.0/8 (loopback)"),
    ("http://1.2.3.4.5/", "neither a valid IPv4 address nor a host name"),
    ("http://example.08/", "neither a valid IPv4 address nor a host name"),
    ("http://0/", '"this network"'),
    ("http://0.0.0.0/", '"this network"'),
    # IPv6 loopback, unspecified and embedded IPv4
    ("http://[::1]/", "::1/128 (loopback)"),
    ("http://[0:0:0:0:0:0:0:1]/", "::1/128 (loopback)"),
    ("http://[::]/", "unspecified"),
    ("http://[0:0:0:0:0:ffff:7f00:1]/", "IPv4-mapped IPv6 form of 127.0.0.1"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped IPv6 form of 127.0.0.1"),
    ("http://[::ffff:10.0.0.1]/", "10.0.0.0/8 (private network)"),
    ("http://[::127.0.0.1]/", "IPv4-compatible IPv6 form of 127.0.0.1"),
    ("http://[::8.8.8.8]/", "IPv4-compatible IPv6 addresses"),
    ("http://[64:ff9b::7f00:1]/", "127.0.0.1 through NAT64"),
    ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
    ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
    ("http://[2002:7f00:1::1]/", "embeds 127.0.0.1 by 6to4"),
    ("http://[2002:c0a8:0101::1]/", "192.168.0.0/16 (private network)"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
    # private, shared, link-local and metadata
    ("http://10.0.0.1/", "Addresses in 10.0.0.0/8 (private network) are not allowed."),
    ("http://172.16.5.4/", "172.16.0.0/12 (private network)"),
    ("http://172.31.255.255/", "172.16.0.0/12 (private network)"),
    ("http://192.168.0.1/", "192.168.0.0/16 (private network)"),
    ("http://100.64.0.1/", "100.64.0.0/10 (carrier-grade NAT"),
    ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
    ("http://169.254.170.2/v2/credentials", "cloud metadata"),
    ("http://169.254.1.1/", "169.254.0.0/16 (link-local)"),
    ("http://100.100.100.200/latest/meta-data", "cloud metadata"),
    ("http://168.63.129.16/machine", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://[fd00::1]/", "fc00::/7 (unique local"),
    ("http://[fc00::1]/", "fc00::/7 (unique local"),
    ("http://[fe80::1]/", "fe80::/10 (link-local)"),
    ("http://[fe80::1%25eth0]/", "fe80::/10 (link-local)"),
    ("http://[2606:4700::1111%25eth0]/", "zone identifiers"),
    ("http://[fec0::1]/", "site-local"),
    # multicast, broadcast, reserved, benchmarking, documentation
    ("http://224.0.0.1/", "224.0.0.0/4 (multicast)"),
    ("http://239.255.255.250/", "224.0.0.0/4 (multicast)"),
    ("http://[ff02::1]/", "ff00::/8 (multicast)"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "240.0.0.0/4 (reserved)"),
    ("http://198.18.0.1/", "198.18.0.0/15 (network benchmarking)"),
    ("http://192.0.0.9/", "192.0.0.0/24 (IETF protocol assignments)"),
    ("http://192.0.2.10/", "documentation"),
    ("http://198.51.100.7/", "documentation"),
    ("http://203.0.113.9/", "documentation"),
    ("http://[2001:db8::1]/", "2001:db8::/32 (documentation)"),
    ("http://[100::1]/", "discard-only"),
    # names that only mean this machine or an internal network
    ("http://localhost/", "localhost is not allowed"),
    ("http://LOCALHOST./", "localhost is not allowed"),
    ("http://localhost:8000/admin", "localhost is not allowed"),
    ("http://api.localhost/", ".localhost point at this machine"),
    ("http://ｌｏｃａｌｈｏｓｔ/", "localhost is not allowed"),
    ("http://localhost.localdomain/", ".localdomain"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
    ("http://metadata.google.internal./", "cloud metadata service"),
    ("http://db.corp.internal/", ".internal"),
    ("http://printer.local/", ".local are multicast DNS"),
    ("http://router.home.arpa/", ".home.arpa"),
    ("http://metadata/", "not a fully qualified host name"),
    ("http://intranet/", "not a fully qualified host name"),
    ("http://bad_host-.example.com/", "not a valid host name"),
    ("http://ex%61mple.com/", "not a valid host name"),
]

ACCEPTED_URLS: list[tuple[str, str, int, str]] = [
    # (URL, host, port, request target)
    ("https://hooks.slack.com/services/T000/B000/XXX", "hooks.slack.com", 443, "/services/T000/B000/XXX"),
    ("https://93.184.215.14/", "93.184.215.14", 443, "/"),
    ("https://[2606:4700::1111]/", "2606:4700::1111", 443, "/"),
    ("https://Hooks.Example.COM./in?x=1#fragment", "hooks.example.com", 443, "/in?x=1"),
    ("http://hooks.example.com:8080", "hooks.example.com", 8080, "/"),
    ("https://8.8.8.8:8443/hook", "8.8.8.8", 8443, "/hook"),
    ("https://[64:ff9b::808:808]/", "64:ff9b::808:808", 443, "/"),
    ("https://bücher.example/ä ö".replace(" ", "%20"), "xn--bcher-kva.example", 443, "/%C3%A4%20%C3%B6"),
    ("https://0x7f.example.com/", "0x7f.example.com", 443, "/"),
]


@pytest.mark.parametrize(("url", "message_fragment"), REFUSED_URLS)
def test_it_refuses_unsafe_urls(url: str, message_fragment: str) -> None:
    with pytest.raises(UnsafeURL) as refused:
        check_url_shape(url)
    assert message_fragment in str(refused.value)


def test_it_has_a_broad_set_of_refusals() -> None:
    assert len(REFUSED_URLS) >= 40
    assert len({url for url, _ in REFUSED_URLS}) == len(REFUSED_URLS)


@pytest.mark.parametrize(("url", "host", "port", "request_target"), ACCEPTED_URLS)
def test_it_accepts_public_urls(url: str, host: str, port: int, request_target: str) -> None:
    target = check_url_shape(url)
    assert (target.host, target.port, target.request_target) == (host, port, request_target)


def test_it_keeps_secrets_out_of_the_origin_it_logs() -> None:
    target = check_url_shape("https://hooks.slack.com/services/T000/B000/XXX?token=abc")
    assert target.origin == "https://hooks.slack.com"
    assert check_url_shape("http://[2606:4700::1111]:8080/x").origin == "http://[2606:4700::1111]:8080"


def test_it_is_a_value_error_for_callers_that_catch_those() -> None:
    assert issubclass(UnsafeURL, ValueError)


def fake_resolver(answers: dict[str, list[str]]) -> Resolver:
    """A getaddrinfo stand-in: host → addresses, in the order a resolver would return them."""

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in answers[host]
        ]

    return resolve


def test_it_refuses_a_name_with_any_private_record() -> None:
    resolver = fake_resolver({"mixed.example.com": ["93.184.215.14", "10.0.0.7"]})
    with pytest.raises(UnsafeURL) as refused:
        resolve_and_check("https://mixed.example.com/hook", resolver=resolver)
    assert "mixed.example.com resolves to 10.0.0.7" in str(refused.value)
    assert "10.0.0.0/8 (private network)" in str(refused.value)


def test_it_refuses_a_name_whose_private_record_comes_first_or_is_ipv6() -> None:
    for addresses in (["127.0.0.1", "93.184.215.14"], ["2606:4700::1111", "fe80::1%eth0"], ["::ffff:192.168.1.1"]):
        with pytest.raises(UnsafeURL):
            resolve_and_check("https://hooks.example.com/", resolver=fake_resolver({"hooks.example.com": addresses}))


def test_it_pins_a_name_with_only_public_records_to_the_first() -> None:
    resolver = fake_resolver({"hooks.example.com": ["93.184.215.14", "2606:4700::1111"]})
    checked = resolve_and_check("https://hooks.example.com/hook", resolver=resolver)
    assert checked.pinned_address == ipaddress.ip_address("93.184.215.14")
    assert checked.resolved_addresses == (
        ipaddress.ip_address("93.184.215.14"),
        ipaddress.ip_address("2606:4700::1111"),
    )
    assert checked.target.host_header == "hooks.example.com"


def test_it_pins_literal_addresses_without_resolving() -> None:
    def must_not_resolve(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise AssertionError("an IP literal needs no DNS")

    checked = resolve_and_check("https://[2606:4700::1111]:8443/", resolver=must_not_resolve)
    assert checked.pinned_address == ipaddress.ip_address("2606:4700::1111")


def test_it_says_a_name_that_does_not_resolve_is_unresolvable_not_unsafe() -> None:
    with pytest.raises(TargetUnresolvable, match=re.escape("nowhere.example.com could not be resolved")):
        resolve_and_check("https://nowhere.example.com/", resolver=fake_resolver({}))
    with pytest.raises(TargetUnresolvable):
        resolve_and_check("https://empty.example.com/", resolver=fake_resolver({"empty.example.com": []}))


def test_it_shape_checks_before_resolving() -> None:
    with pytest.raises(UnsafeURL, match="user@host"):
        resolve_and_check("https://a@hooks.example.com/", resolver=fake_resolver({"hooks.example.com": ["8.8.8.8"]}))


def test_it_refuses_localhost_through_the_real_resolver() -> None:
    with pytest.raises(UnsafeURL, match="localhost"):
        resolve_and_check("http://localhost:8000/")
    # The real resolver reads inet_aton spellings as loopback too; the check sees them first.
    with pytest.raises(UnsafeURL, match=re.escape("127.0.0.1")):
        resolve_and_check("http://0x7f.1:8000/")
    # And what the real resolver says about this machine's name is checked record by record.
    with pytest.raises(UnsafeURL, match=re.escape("127.0.0.0/8")):
        resolve_and_check("http://this-machine.example:8000/", resolver=_real_resolver_for("localhost"))


def _real_resolver_for(real_name: str) -> Resolver:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return socket.getaddrinfo(real_name, port, *args, **kwargs)

    return resolve


def test_it_admits_private_addresses_only_from_the_allow_list(settings: Settings) -> None:
    with pytest.raises(UnsafeURL):
        resolve_and_check("http://127.0.0.1:8080/hook")

    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    checked = resolve_and_check("http://127.0.0.1:8080/hook")
    assert checked.pinned_address == ipaddress.ip_address("127.0.0.1")
    assert resolve_and_check("http://[::ffff:127.0.0.1]:8080/").pinned_address == ipaddress.ip_address("127.0.0.1")
    resolver = fake_resolver({"hooks.test": ["127.0.0.1"]})
    assert resolve_and_check("http://hooks.test:8080/", resolver=resolver).pinned_address.is_loopback
    with pytest.raises(UnsafeURL):
        resolve_and_check("http://127.0.0.2:8080/hook")
    with pytest.raises(UnsafeURL):
        resolve_and_check("http://10.0.0.1/")
    # Names are refused whatever the allow-list says.
    with pytest.raises(UnsafeURL):
        resolve_and_check("http://localhost:8080/")


def test_it_never_admits_cloud_metadata_even_with_a_broad_allow_list(settings: Settings) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["0.0.0.0/0", "::/0"]
    assert blocked_address_reason(ipaddress.ip_address("10.1.2.3")) is None
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254"):
        assert "cloud metadata" in (blocked_address_reason(ipaddress.ip_address(address)) or "")


def test_it_refuses_a_malformed_allow_list(settings: Settings) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/33"]
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_ALLOWED_PRIVATE_NETWORKS"):
        resolve_and_check("http://127.0.0.1/")


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111", "2a00:1450:4001::200e", "64:ff9b::808:808"],
)
def test_it_allows_public_addresses(address: str) -> None:
    assert blocked_address_reason(ipaddress.ip_address(address)) is None


# Every cloud metadata address we know of. Instance metadata hands out the host's credentials, so
# no allow-list may open one, whichever IPv6 form the address is written in.
METADATA_IPV4 = [
    "169.254.169.254",  # AWS, GCP (metadata.google.internal), Azure, OpenStack, DigitalOcean, Oracle, Hetzner
    "169.254.170.2",  # AWS ECS container credentials
    "169.254.170.23",  # AWS EKS Pod Identity agent
    "169.254.0.23",  # Tencent Cloud metadata (metadata.tencentyun.com)
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure wire server
    "192.0.0.192",  # Oracle Cloud legacy metadata
    "169.254.42.42",  # Scaleway instance metadata
]
METADATA_IPV6 = [
    "fd00:ec2::254",  # AWS instance metadata
    "fd00:ec2::23",  # AWS EKS Pod Identity agent
    "fd20:ce::254",  # GCP instance metadata
    "fe80::a9fe:a9fe",  # OpenStack instance metadata
    "fd00:a9fe:a9fe::1",  # Akamai (Linode) metadata service
    "fd00:c1::a9fe:a9fe",  # Oracle Cloud instance metadata
    "fd00:42::42",  # Scaleway instance metadata
]


def _ipv4_in_ipv6_forms(ipv4: str) -> dict[str, str]:
    """`ipv4` in every IPv6 form that carries an IPv4 address."""
    value = int(ipaddress.IPv4Address(ipv4))

    def with_low_bits(prefix: str, low: int) -> str:
        return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address(prefix)) | low))

    def rfc6052(prefix: str, length: int) -> str:
        # The IPv4 address goes right after the prefix, skipping bits 64-71 (RFC 6052 section 2.2).
        packed = bytearray(ipaddress.IPv6Address(prefix).packed)
        places = [i for i in range(length // 8, 16) if i != 8][:4]
        for place, byte in zip(places, ipaddress.IPv4Address(ipv4).packed, strict=True):
            packed[place] = byte
        return str(ipaddress.IPv6Address(bytes(packed)))

    teredo_server = int(ipaddress.IPv6Address("2001:0::")) | (value << 64)
    return {
        "IPv4-mapped": f"::ffff:{ipv4}",
        "SIIT IPv4-translated": with_low_bits("::ffff:0:0:0", value),
        "IPv4-compatible": f"::{ipv4}",
        "NAT64 well-known": f"64:ff9b::{ipv4}",
        "NAT64 local-use /96": with_low_bits("64:ff9b:1::", value),
        "NAT64 local-use /48": rfc6052("64:ff9b:1::", 48),
        "NAT64 local-use /56": rfc6052("64:ff9b:1:ab00::", 56),
        "NAT64 local-use /64": rfc6052("64:ff9b:1:abcd::", 64),
        "NAT64 network-specific /32": rfc6052("2001:db8::", 32),
        "NAT64 network-specific /96": rfc6052("fd12:3456:789a::", 96),
        "6to4": str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("2002::")) | (value << 80) | 1)),
        "Teredo server": str(ipaddress.IPv6Address(teredo_server | 0x1234)),
        "Teredo client": with_low_bits("2001:0:4136:e378::", ~value & 0xFFFFFFFF),
    }


EVERY_FORM_OF_METADATA = [
    pytest.param(address, id=f"{ipv4}-{form}")
    for ipv4 in METADATA_IPV4
    for form, address in _ipv4_in_ipv6_forms(ipv4).items()
] + [pytest.param(address, id=address) for address in METADATA_IPV4 + METADATA_IPV6]

# Allow-lists an on-prem operator might write; the broadest one covers everything.
IPV6_ALLOW_LISTS = [
    pytest.param(["0.0.0.0/0", "::/0"], id="everything"),
    pytest.param(
        ["::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32"],
        id="each-ipv6-form",
    ),
    pytest.param(["fc00::/7", "fe80::/10", "2001:db8::/32", "169.254.0.0/16", "192.0.0.0/24"], id="private-ranges"),
]


@pytest.mark.parametrize("allowed", IPV6_ALLOW_LISTS)
@pytest.mark.parametrize("address", EVERY_FORM_OF_METADATA)
def test_it_never_admits_metadata_in_any_form_whatever_the_allow_list(
    settings: Settings, allowed: list[str], address: str
) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = allowed
    reason = blocked_address_reason(ipaddress.ip_address(address)) or ""
    assert "never allowed" in reason, f"{address} got through: {reason!r}"
    # The literal in a URL, and a name that resolves to it (the address the connection would use).
    bracketed = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeURL, match="never allowed"):
        check_url_shape(f"http://{bracketed}/latest/meta-data/")
    resolver = fake_resolver({"innocent.example.com": ["93.184.215.14", address]})
    with pytest.raises(UnsafeURL, match="never allowed"):
        resolve_and_check("http://innocent.example.com/", resolver=resolver)


@pytest.mark.parametrize(
    "address", ["169.254.1.1", "169.254.255.254", "fe80::1", "64:ff9b::a9fe:101", "2002:a9fe:101::1"]
)
def test_it_never_admits_link_local_addresses_where_metadata_services_live(settings: Settings, address: str) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["0.0.0.0/0", "::/0"]
    assert "never allowed" in (blocked_address_reason(ipaddress.ip_address(address)) or "")


def test_it_names_the_metadata_address_behind_the_ipv6_form(settings: Settings) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["::/0"]
    reason = blocked_address_reason(ipaddress.ip_address("64:ff9b::a9fe:a9fe")) or ""
    assert "169.254.169.254 is a cloud metadata address" in reason
    assert "through NAT64" in reason
    reason = blocked_address_reason(ipaddress.ip_address("2002:6464:64c8::1")) or ""
    assert "100.100.100.200 is a cloud metadata address (Alibaba Cloud" in reason and "6to4" in reason


@pytest.mark.parametrize(
    "address", ["64:ff9b::808:808", "64:ff9b:1::a00:5", "2002:a00:5::1", "::ffff:10.0.0.5", "fd12::5", "10.0.0.5"]
)
def test_an_ipv6_allow_list_still_admits_what_it_covers(settings: Settings, address: str) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["10.0.0.0/8", "fd12::/16", "64:ff9b:1::/48", "2002::/16"]
    assert blocked_address_reason(ipaddress.ip_address(address)) is None
