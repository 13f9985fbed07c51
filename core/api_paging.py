"""Cursor pagination shared by the API's list endpoints: `?limit=&cursor=` answers
`{"items": [...], "next": cursor-or-null}`; pass `next` back as `cursor` for the following page."""

from __future__ import annotations

import base64
import binascii
import json

from core.api_errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
LIMIT_DESCRIPTION = f"Items per page, at least 1; default {DEFAULT_LIMIT}, larger values are capped at {MAX_LIMIT}."
CURSOR_DESCRIPTION = "The `next` value of the previous page; leave out for the first page."


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_query", f"{field}: {message}", [{"field": field, "message": message}])


def page_size(limit: int) -> int:
    """The number of items to answer for `?limit=`; below 1 is refused, above MAX_LIMIT capped."""
    if limit < 1:
        raise _invalid("limit", "Must be at least 1.")
    return min(limit, MAX_LIMIT)


def encode_cursor(listing: str, position: list[str]) -> str:
    """An opaque cursor for the row after `position` (its sort key) in `listing`."""
    raw = json.dumps([listing, *position], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str, arity: int) -> list[str]:
    """The sort key an `encode_cursor(listing, ...)` produced, or a 400 naming the `cursor` parameter
    (also for a cursor of another listing)."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    # RecursionError: a cursor of thousands of nested arrays, which json reads recursively.
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        decoded = None
    if (
        not isinstance(decoded, list)
        or len(decoded) != arity + 1
        or decoded[0] != listing
        or not all(isinstance(part, str) and "\x00" not in part for part in decoded[1:])
    ):
        raise _invalid("cursor", "This cursor is not valid; pass the `next` value of a previous page.")
    return decoded[1:]
