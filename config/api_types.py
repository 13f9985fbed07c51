"""Field types of the API's schemas that refuse what the database cannot store.

PostgreSQL text and jsonb cannot hold a NUL character: without these a "\\u0000" in a body or
a %00 in a query would reach the database and fail there as a 500 instead of a 422 that names
the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

NUL_MESSAGE = "must not contain a NUL (\\u0000) character"


def _refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _refuse_nul_inside(value: Any) -> Any:
    if _holds_nul(value):
        raise ValueError(f"{NUL_MESSAGE} in any key or string")
    return value


Text = Annotated[str, AfterValidator(_refuse_nul)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_refuse_nul_inside)]
