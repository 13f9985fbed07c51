"""Config values in their HTML-form shape: flat names like `config-rules.0.url` mapped to lists of strings.

A bound form reads this shape from request.POST. An unbound form encodes its initial config (or the
schema's defaults) into the same shape first, so both render from one code path. Adding and removing
rows of a list is also done here, by rewriting the submitted values before the form is built.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.datastructures import MultiValueDict

from actions_app.schema_forms.validation import format_number, join_path
from core.http import parse_count

PostedValues = dict[str, list[str]]

# Caps the rows one request can create, whatever a tampered row count or maxItems says.
MAX_ROWS = 100

# ASCII digits and few of them: \d also matches other scripts' digits, and int() refuses more than
# 4,300 digits with a ValueError. A longer index names no row (there are at most MAX_ROWS).
_ROW_INDEX = re.compile(r"^([0-9]{1,9})(?=\.|-|$)")
_ROW_BUTTON = re.compile(r"^(?P<path>.+)-(?:(?P<add>add-row)|remove-row-(?P<index>[0-9]{1,9}))$")
_UNCHECKED_VALUES = {"", "0", "false", "off"}


def row_count_name(prefix: str, list_path: str) -> str:
    return f"{prefix}-{list_path}-row-count"


def add_row_name(prefix: str, list_path: str) -> str:
    return f"{prefix}-{list_path}-add-row"


def remove_row_name(prefix: str, list_path: str, index: int) -> str:
    return f"{prefix}-{list_path}-remove-row-{index}"


def normalise_posted(data: Mapping[str, Any]) -> PostedValues:
    """request.POST (a QueryDict) or a plain dict of strings/lists as {name: [values]}."""
    if isinstance(data, MultiValueDict):
        return {key: [str(value) for value in values] for key, values in data.lists()}
    posted: PostedValues = {}
    for key, value in data.items():
        posted[key] = [str(item) for item in value] if isinstance(value, list | tuple) else [str(value)]
    return posted


def last_value(posted: PostedValues, name: str) -> str:
    values = posted.get(name)
    return values[-1] if values else ""


def is_checked(raw: str) -> bool:
    return raw.strip().lower() not in _UNCHECKED_VALUES


def display_scalar(value: Any) -> str:
    """How a JSON scalar appears in an input: text as is, 10 not 10.0, true/false for booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    return json.dumps(value)


def posted_row_count(posted: PostedValues, prefix: str, list_path: str) -> int:
    """How many rows a list has: its hidden row count, else the highest row index submitted plus one."""
    declared = last_value(posted, row_count_name(prefix, list_path)).strip()
    count = parse_count(declared)
    if count is not None:
        return min(count, MAX_ROWS)
    row_prefix = f"{prefix}-{list_path}."
    indexes = [_row_index(key, row_prefix) for key in posted]
    return min(max((index + 1 for index in indexes if index is not None), default=0), MAX_ROWS)


def defaults_for(schema: dict[str, Any]) -> Any:
    """The schema's defaults as a value (None when there are none), nested objects included."""
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    if schema.get("type") == "object":
        defaults = {name: defaults_for(child) for name, child in schema.get("properties", {}).items()}
        return {name: value for name, value in defaults.items() if value is not None}
    return None


def encode_config(schema: dict[str, Any], config: Any, prefix: str, path: str = "") -> PostedValues:
    """`config` as the values the form would submit for it. writeOnly values are never included."""
    posted: PostedValues = {}
    _encode(schema, config, prefix, path, posted)
    return posted


def _encode(schema: dict[str, Any], value: Any, prefix: str, path: str, posted: PostedValues) -> None:
    name = f"{prefix}-{path}"
    schema_type = schema.get("type")
    if schema_type == "object":
        properties = value if isinstance(value, dict) else {}
        for child_name, child_schema in schema.get("properties", {}).items():
            _encode(child_schema, properties.get(child_name), prefix, join_path(path, child_name), posted)
    elif schema_type == "array":
        items = schema["items"]
        values = value if isinstance(value, list) else []
        if items.get("type") == "object":
            count = min(max(len(values), schema.get("minItems", 0)), MAX_ROWS)
            posted[row_count_name(prefix, path)] = [str(count)]
            for index in range(count):
                row = values[index] if index < len(values) else defaults_for(items)
                _encode(items, row, prefix, join_path(path, index), posted)
        elif "enum" in items:
            posted[name] = [display_scalar(item) for item in values]
        else:
            posted[name] = ["\n".join(display_scalar(item) for item in values)]
    elif schema_type == "boolean":
        if value is True:
            posted[name] = ["on"]
    elif value is not None and not schema.get("writeOnly"):
        posted[name] = [display_scalar(value)]


@dataclass(frozen=True)
class RowChange:
    """A press of a list's "Add row" (removed_index None) or "Remove row N" button."""

    list_path: str
    button_name: str
    removed_index: int | None


def find_row_change(posted: PostedValues, schema: dict[str, Any], prefix: str) -> RowChange | None:
    lead = f"{prefix}-"
    for key in posted:
        match = _ROW_BUTTON.match(key[len(lead) :]) if key.startswith(lead) else None
        if match and is_row_list(schema_at(schema, match["path"])):
            index = None if match["add"] else int(match["index"])
            return RowChange(list_path=match["path"], button_name=key, removed_index=index)
    return None


def apply_row_change(posted: PostedValues, change: RowChange, schema: dict[str, Any], prefix: str) -> PostedValues:
    """The submitted values with one row added (prefilled with defaults) or removed and later rows renumbered."""
    list_schema = schema_at(schema, change.list_path)
    assert list_schema is not None  # find_row_change only returns paths of lists of rows
    count = posted_row_count(posted, prefix, change.list_path)
    changed = {key: values for key, values in posted.items() if key != change.button_name}
    if change.removed_index is None:
        if count < min(list_schema.get("maxItems", MAX_ROWS), MAX_ROWS):
            items = list_schema["items"]
            changed.update(encode_config(items, defaults_for(items), prefix, join_path(change.list_path, count)))
            count += 1
    elif change.removed_index < count:
        changed = _without_row(changed, f"{prefix}-{change.list_path}.", change.removed_index)
        count -= 1
    changed[row_count_name(prefix, change.list_path)] = [str(count)]
    return changed


def _without_row(posted: PostedValues, row_prefix: str, removed_index: int) -> PostedValues:
    renumbered: PostedValues = {}
    for key, values in posted.items():
        index = _row_index(key, row_prefix)
        if index is None or index < removed_index:
            renumbered[key] = values
        elif index > removed_index:
            rest = key[len(row_prefix) + len(str(index)) :]
            renumbered[f"{row_prefix}{index - 1}{rest}"] = values
    return renumbered


def _row_index(key: str, row_prefix: str) -> int | None:
    if not key.startswith(row_prefix):
        return None
    match = _ROW_INDEX.match(key[len(row_prefix) :])
    return int(match[1]) if match else None


def schema_at(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The subschema for a dotted path such as rules.0.url, or None when the path leads nowhere."""
    node: Any = schema
    for part in path.split("."):
        if node.get("type") == "object":
            node = node.get("properties", {}).get(part)
        elif node.get("type") == "array" and part.isdigit():
            node = node.get("items")
        else:
            return None
        if not isinstance(node, dict):
            return None
    found: dict[str, Any] = node
    return found


def is_row_list(schema: dict[str, Any] | None) -> bool:
    """An array of objects, shown as repeatable rows."""
    if schema is None or schema.get("type") != "array":
        return False
    items = schema.get("items")
    return isinstance(items, dict) and items.get("type") == "object"
