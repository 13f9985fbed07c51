"""writeOnly settings: where they are in a schema, and a config with their values hidden."""

from __future__ import annotations

import copy
from typing import Any

from actions_app.schema_forms.validation import join_path

MASK = "••••••"
ANY_ITEM = "*"


def secret_paths(schema: dict[str, Any]) -> list[str]:
    """Dotted paths of every writeOnly setting, e.g. ["secret"]; list items appear as `*` (rules.*.token)."""
    return list(_walk_secret_paths(schema, ""))


def mask_secrets(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with every writeOnly value that is present replaced by MASK."""
    masked = copy.deepcopy(config)
    _mask_in_place(masked, schema)
    return masked


def _walk_secret_paths(schema: Any, path: str) -> Any:
    if not isinstance(schema, dict):
        return
    if schema.get("writeOnly") is True and path:
        yield path
        return
    for name, child in schema.get("properties", {}).items():
        yield from _walk_secret_paths(child, join_path(path, name))
    if isinstance(schema.get("items"), dict):
        yield from _walk_secret_paths(schema["items"], join_path(path, ANY_ITEM))


def _mask_in_place(value: Any, schema: Any) -> None:
    # Walks the value and the schema together; values the schema does not describe stay as they are.
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for name, child_schema in schema.get("properties", {}).items():
            if name not in value:
                continue
            if isinstance(child_schema, dict) and child_schema.get("writeOnly") is True:
                value[name] = MASK
            else:
                _mask_in_place(value[name], child_schema)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        item_schema = schema["items"]
        for index, item in enumerate(value):
            if item_schema.get("writeOnly") is True:
                value[index] = MASK
            else:
                _mask_in_place(item, item_schema)
