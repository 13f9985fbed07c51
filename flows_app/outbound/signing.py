"""Signatures on webhook-emit deliveries, so receivers can tell our POSTs from anyone else's.

Every delivery carries

    X-Actions-Delivery: <delivery id>            (the same on every retry: receivers de-duplicate on it)
    X-Actions-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

when the binding has a signing secret (slack-notify has none and is not signed).

To verify as a receiver: take the raw request body exactly as received (before any JSON parsing),
split the header on "," into key=value pairs, compute HMAC-SHA256 with the shared secret over the
ASCII timestamp, a ".", and the raw body, compare it in constant time with each `v1` value, and
refuse timestamps more than a few minutes from your clock (replays). `verify_signature` does exactly
that. Deliveries can arrive more than once (at-least-once), so de-duplicate on X-Actions-Delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Actions-Signature"
DELIVERY_HEADER = "X-Actions-Delivery"
SIGNATURE_VERSION = "v1"


def compute_signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """Hex HMAC-SHA256 of f"{timestamp}.{raw_body}" under `secret`."""
    signed = f"{timestamp}.".encode("ascii") + raw_body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header_value(secret: str, raw_body: bytes, *, timestamp: int | None = None) -> str:
    """The X-Actions-Signature value for `raw_body`, signed now unless `timestamp` is given."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    return f"t={signed_at},{SIGNATURE_VERSION}={compute_signature(secret, signed_at, raw_body)}"


def delivery_headers(*, delivery_id: int | str, signing_secret: str, raw_body: bytes) -> dict[str, str]:
    """Headers identifying (and, when there is a secret, signing) one delivery attempt."""
    headers = {DELIVERY_HEADER: str(delivery_id)}
    if signing_secret:
        headers[SIGNATURE_HEADER] = signature_header_value(signing_secret, raw_body)
    return headers


def verify_signature(
    secret: str, header: str, raw_body: bytes | str, tolerance_s: int = 300, *, now: float | None = None
) -> bool:
    """True when `header` holds a v1 signature of `raw_body` under `secret`, made within `tolerance_s` of now."""
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == SIGNATURE_VERSION:
            candidates.append(value)
    if timestamp is None or not candidates or not secret:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = compute_signature(secret, timestamp, body)
    # Several v1 values may be present while a receiver rotates secrets; any one may match.
    return any(hmac.compare_digest(expected.encode(), candidate.encode("utf-8")) for candidate in candidates)
