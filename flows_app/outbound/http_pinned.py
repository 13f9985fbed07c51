"""POST to an address that `ssrf.resolve_and_check` approved, without resolving the name again.

A small HTTP/1.1 client on `socket` and `ssl` rather than http.client or httpx, because it has to:
- connect to the pinned IP while sending the operator's name in `Host:` and in TLS SNI, and verify the
  certificate against that name;
- keep ONE deadline for connect + TLS + send + answer (a per-read timeout lets a server that drips a
  byte at a time hold a worker forever);
- read no more than a fixed number of bytes: the status line is all a delivery needs;
- never follow a redirect (a 3xx Location could point anywhere, including inside our network).
"""

from __future__ import annotations

import functools
import re
import socket
import ssl
import time
from collections.abc import Mapping
from typing import NamedTuple

from django.conf import settings

from flows_app.outbound.ssrf import CheckedTarget

USER_AGENT = "ActionsConsole-Webhooks/1.0"
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024

_STATUS_LINE = re.compile(rb"HTTP/\d\.\d ([1-5][0-9]{2})(?: (.*))?")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


class PostOutcome(NamedTuple):
    """The answer's status code (None when there was none) and, unless it was 2xx, why the attempt failed."""

    status_code: int | None
    error: str


class _NoAnswer(Exception):
    """The server did not give a usable HTTP answer; the message is for the delivery log."""


def post_pinned(
    checked: CheckedTarget,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
    max_response_bytes: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> PostOutcome:
    """POST `body` as JSON to `checked` over a connection to its pinned address; never raises for network trouble.

    Defaults come from the settings WEBHOOK_TIMEOUT_SECONDS (whole exchange), WEBHOOK_CONNECT_TIMEOUT_SECONDS
    and WEBHOOK_MAX_RESPONSE_BYTES. `ssl_context` exists for tests with their own certificate authority.
    """
    target = checked.target
    total_s = _chosen(timeout_s, "WEBHOOK_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
    connect_s = _chosen(connect_timeout_s, "WEBHOOK_CONNECT_TIMEOUT_SECONDS", DEFAULT_CONNECT_TIMEOUT_SECONDS)
    read_limit = int(_chosen(max_response_bytes, "WEBHOOK_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES))
    deadline = time.monotonic() + total_s
    request = _request_bytes(target.request_target, target.host_header, body, headers)

    try:
        connection = socket.create_connection(
            (str(checked.pinned_address), target.port), timeout=max(0.001, min(connect_s, total_s))
        )
    except TimeoutError:
        return PostOutcome(None, f"Connecting to {target.origin} timed out.")
    except OSError as error:
        return PostOutcome(None, f"Could not connect to {target.origin} ({error.strerror or error}).")

    try:
        if target.scheme == "https":
            connection.settimeout(_remaining(deadline))
            context = ssl_context or _default_tls_context()
            # server_hostname sets SNI and is the name the certificate must match, not the pinned IP.
            connection = context.wrap_socket(connection, server_hostname=target.host)
        connection.settimeout(_remaining(deadline))
        connection.sendall(request)
        status_code, reason = _read_final_status(connection, deadline, read_limit)
    except _NoAnswer as problem:
        return PostOutcome(None, str(problem))
    except TimeoutError:
        return PostOutcome(None, f"No answer from {target.origin} within {total_s:g} s.")
    except ssl.SSLCertVerificationError as error:
        return PostOutcome(None, f"The TLS certificate of {target.host} was refused ({error.verify_message}).")
    except ssl.SSLError as error:
        return PostOutcome(None, f"TLS with {target.origin} failed ({error.reason or error}).")
    except OSError as error:
        return PostOutcome(None, f"The connection to {target.origin} failed ({error.strerror or error}).")
    finally:
        connection.close()

    if 200 <= status_code < 300:
        return PostOutcome(status_code, "")
    answer = f"{status_code} {reason}".strip()
    if 300 <= status_code < 400:
        return PostOutcome(
            status_code, f"The server answered {answer}, a redirect; redirects are not followed — use the final URL."
        )
    return PostOutcome(status_code, f"The server answered {answer}.")


def _request_bytes(request_target: str, host_header: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [
        f"POST {request_target} HTTP/1.1",
        f"Host: {host_header}",
        f"User-Agent: {USER_AGENT}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    for name, value in headers.items():
        # Header injection would let a value add headers or a second request; ours are generated, so this is
        # a guard against future callers rather than against operators.
        if not _HEADER_NAME.fullmatch(name) or any(char in value for char in "\r\n\0"):
            raise ValueError(f"Refusing malformed header {name!r}.")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _read_final_status(connection: socket.socket, deadline: float, read_limit: int) -> tuple[int, str]:
    """The status code and reason of the final answer, skipping interim 1xx answers such as 103 Early Hints."""
    received = bytearray()
    head_start = 0
    while True:
        line_end = received.find(b"\n", head_start)
        if line_end >= 0:
            status_line = bytes(received[head_start:line_end]).rstrip(b"\r")
            matched = _STATUS_LINE.fullmatch(status_line)
            if matched is None:
                raise _NoAnswer("The server's answer is not HTTP.")
            status_code = int(matched.group(1))
            if status_code >= 200 or status_code == 101:
                reason = (matched.group(2) or b"").decode("latin-1")
                return status_code, "".join(char for char in reason if char.isprintable())[:80]
            end_of_head = _END_OF_HEAD.search(received, line_end - 1)
            if end_of_head is not None:
                head_start = end_of_head.end()
                continue
        if len(received) >= read_limit:
            raise _NoAnswer(f"The server sent {read_limit} bytes without a final status line.")
        connection.settimeout(_remaining(deadline))
        chunk = connection.recv(min(16 * 1024, read_limit - len(received)))
        if not chunk:
            raise _NoAnswer("The server closed the connection without answering.")
        received += chunk


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return remaining


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    # The system trust store, hostname checking on (create_default_context's defaults), nothing older than 1.2.
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _chosen(explicit: float | None, setting_name: str, default: float) -> float:
    return float(explicit if explicit is not None else getattr(settings, setting_name, default))
