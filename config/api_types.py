"""Field types of the API's schemas that refuse what the database cannot store; forms use the
same checks (text_problem, unstorable_reason).

PostgreSQL text and jsonb cannot hold a NUL character, no UTF-8 text can hold an unpaired UTF-16
surrogate, and neither jsonb nor SQLite's JSON check takes NaN or an infinity (which Python's
json module reads and writes): without these a "\\u0000", a "\\ud800" or a NaN in a body, or a
%00 in a query, would reach the database and fail there as a 500 instead of a 422 that names the
field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator

NUL_MESSAGE = "must not contain a NUL (\\u0000) character"
SURROGATE_MESSAGE = "must not contain an unpaired UTF-16 surrogate (\\ud800 to \\udfff)"
NOT_FINITE_MESSAGE = "must not contain NaN or Infinity, which are not JSON numbers"


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
    NaN or an infinity anywhere), or None when it can."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{problem} in any key or string" if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else NOT_FINITE_MESSAGE
    if isinstance(value, dict):
        return next(filter(None, map(unstorable_reason, (*value.keys(), *value.values()))), None)
    if isinstance(value, list):
        return next(filter(None, map(unstorable_reason, value)), None)
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
