"""JSON that operators type into forms: a custom action's config schema, Try it's app_metadata."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError

from core.api_types import TOO_DEEP_MESSAGE, unstorable_reason


class _NotJSONConstant(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _NotJSONConstant(constant)


def parse_json_text(text: str) -> Any:
    """`text` → its value, or a ValidationError that says what is wrong and where.

    Python's json module also reads NaN and Infinity, which are not JSON; the database would
    refuse them later, as PostgreSQL refuses NUL characters, and each would be a 500.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
        reason = unstorable_reason(value)
    except json.JSONDecodeError as error:
        raise ValidationError(f"Not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}.") from error
    except _NotJSONConstant as error:
        raise ValidationError(f"Not valid JSON: {error.constant} is not a JSON value; use a number or null.") from error
    except RecursionError as error:
        raise ValidationError(f"The JSON {TOO_DEEP_MESSAGE}.") from error
    except ValueError as error:  # Python refuses integers of more than 4,300 digits
        raise ValidationError("Not valid JSON here: a number is too long.") from error
    if reason:
        raise ValidationError(f"The JSON {reason}.")
    return value
