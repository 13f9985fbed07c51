"""The hosts a custom action version may call (contract §11 `egress_hosts`): exact host names,
one leading wildcard label (`*.example.com`), `localhost`, or an IP address written the usual way
(`203.0.113.7`, `[2001:db8::1]`), each with an optional port (443 when left out).

Other notations of an address (`127.1`, `0x7f.0.0.1`, `2130706433`) are refused with the usual
form to write instead, so the list reads as what the action may reach; the outbound guard still
checks every address it connects to (private ones only inside WEBHOOK_ALLOWED_PRIVATE_NETWORKS).
"""

from __future__ import annotations

import ipaddress
import re
import socket

MAX_EGRESS_HOSTS = 20
DEFAULT_EGRESS_PORT = 443
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^(\*\.)?({_LABEL}(?:\.{_LABEL})+)(?::(\d{{1,5}}))?$")
_RULE = "a host name such as api.example.com or *.example.com, or an address, with an optional :port"


class EgressHostsRefused(ValueError):
    """Each refused entry with why, in the order given."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_BRACKETED = re.compile(r"^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$")


def _usual_ipv4(name: str) -> str | None:
    """The dotted-quad form of an IPv4 address written another way, or None."""
    try:
        return socket.inet_ntoa(socket.inet_aton(name))
    except OSError:
        return None


def _port_problem(entry: str, port: str | None) -> str | None:
    if port is not None and not 1 <= int(port) <= 65535:
        return f"{entry}: the port must be from 1 to 65535"
    return None


def _entry_problem(entry: str) -> str | None:
    if len(entry) > 260:
        return f"{entry[:40]}…: too long for a host name"
    bracketed = _BRACKETED.fullmatch(entry)
    if bracketed is not None:
        try:
            address = ipaddress.IPv6Address(bracketed.group(1))
        except ValueError:
            return f"{entry}: not an IPv6 address"
        if str(address) != bracketed.group(1):
            return f"{entry}: write the address as [{address}]"
        return _port_problem(entry, bracketed.group(2))
    if entry.count(":") > 1:
        return f"{entry}: an IPv6 address goes in brackets, such as [2001:db8::1]:8443"
    name, _, port = entry.partition(":")
    if name == "localhost":
        return _port_problem(entry, port or None) if port.isdigit() or not port else f"{entry}: not {_RULE}"
    usual = _usual_ipv4(name)
    if usual is not None:
        if usual != name:
            return f"{entry}: write the address as {usual}"
        return _port_problem(entry, port or None) if port.isdigit() or not port else f"{entry}: not {_RULE}"
    found = _HOST.fullmatch(entry)
    if found is None:
        return f"{entry}: not {_RULE}"
    name, port = found.group(2), found.group(3)
    # Top-level domains start with a letter; a last label starting with a digit is an address
    # that inet_aton does not read either (1.2.3.0x4).
    if not name.rsplit(".", 1)[-1][0].isalpha():
        return f"{entry}: not {_RULE}"
    return _port_problem(entry, port)


def normalize_egress_hosts(entries: list[str]) -> list[str]:
    """The entries lower-cased, without a trailing dot or an explicit :443, in the given order
    with repeats dropped; EgressHostsRefused naming every bad entry."""
    problems: list[str] = []
    hosts: list[str] = []
    for raw in entries:
        if not isinstance(raw, str):
            problems.append(f"{raw!r}: not text")
            continue
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
            host, port = entry.rsplit(":", 1)
            entry = host.rstrip(".") if port == str(DEFAULT_EGRESS_PORT) else f"{host.rstrip('.')}:{port}"
        else:
            entry = entry.rstrip(".")
        problem = _entry_problem(entry)
        if problem:
            problems.append(problem)
        elif entry not in hosts:
            hosts.append(entry)
    if len(hosts) > MAX_EGRESS_HOSTS:
        problems.append(f"{len(hosts)} hosts; a version may declare at most {MAX_EGRESS_HOSTS}")
    if problems:
        raise EgressHostsRefused(problems)
    return hosts


def egress_hosts_from_text(text: str) -> list[str]:
    """The editor's text box: one host per line (commas and spaces also separate)."""
    return [entry for entry in re.split(r"[\s,]+", text) if entry]
