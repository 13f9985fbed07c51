"""Field types of the API's schemas that refuse what the database cannot store; forms use the
same checks (text_problem, unstorable_reason).

PostgreSQL text and jsonb cannot hold a NUL character, no UTF-8 text can hold an unpaired UTF-16
surrogate, and neither jsonb nor SQLite's JSON check takes NaN or an infinity (which Python's
json module reads and writes): without these a "\\u0000", a "\\ud800" or a NaN in a body, or a
%00 in a query, would reach the database and fail there as a 500 instead of a 422 that names the
field. Objects and arrays nested deeper than MAX_JSON_DEPTH are refused too: copying and comparing
them recursively would end in a RecursionError.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

NUL_MESSAGE = "must not contain a NUL (\\u0000) character"
SURROGATE_MESSAGE = "must not contain an unpaired UTF-16 surrogate (\\ud800 to \\udfff)"
NOT_FINITE_MESSAGE = "must not contain NaN or Infinity, which are not JSON numbers"
MAX_JSON_DEPTH = 64
TOO_DEEP_MESSAGE = f"is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects and arrays"


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored (a NUL; a lone surrogate, which a JSON "\\ud800" escape can
    produce and UTF-8 cannot encode), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def unstorable_reason(value: Any) -> str | None:
    """Why `value` could not be stored as JSON (a NUL or a lone surrogate in any key or string, a
    NaN or an infinity anywhere, objects and arrays nested more than MAX_JSON_DEPTH deep), or None.

    Walked without recursion: the services copy and compare configs recursively, so a body nested
    a few hundred levels deep must be refused here rather than end in a RecursionError there."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{problem} in any key or string"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return NOT_FINITE_MESSAGE
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return TOO_DEEP_MESSAGE
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None


IP_ADDRESS_MESSAGE = "must be an IPv4 or IPv6 address such as 203.0.113.9 or 2001:db8::1, without a prefix or zone"
_LONGEST_IP_ADDRESS = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")


def ip_address_problem(text: str) -> str | None:
    """Why `text` is not one client address (a network such as 1.2.3.4/24, 999.1.1.1, a scoped
    fe80::1%eth0, anything else), or None. The run endpoint checks this on every sign-in: one
    ipaddress parse, after a length check so 5,000 characters are not parsed at all."""
    if len(text) > _LONGEST_IP_ADDRESS or "%" in text:
        return IP_ADDRESS_MESSAGE
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return IP_ADDRESS_MESSAGE
    return None


RISK_SCORE_MESSAGE = "must be a number from 0 to 100"


def risk_score_problem(value: Any) -> str | None:
    """Why `value` is not a risk score (a number, not a boolean, from 0 to 100), or None. The run
    API, the test endpoint and harness, and Try it all read the score through this one rule."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        return RISK_SCORE_MESSAGE
    return None


def _refusing(problem_of: Callable[[Any], str | None]) -> Callable[[Any], Any]:
    """A pydantic validator that refuses a value `problem_of` finds a problem with, saying which."""

    def refuse(value: Any) -> Any:
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)
        return value

    return refuse


Text = Annotated[str, AfterValidator(_refusing(text_problem))]
JsonObject = Annotated[dict[str, Any], AfterValidator(_refusing(unstorable_reason))]
IpAddress = Annotated[str, AfterValidator(_refusing(ip_address_problem))]
# Checked before pydantic converts: lax parsing read JSON true as 1 and "90" as 90.
RiskScore = Annotated[float, BeforeValidator(_refusing(risk_score_problem))]
