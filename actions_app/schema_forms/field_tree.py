"""Build the field tree for a schema from submitted (or encoded initial) values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actions_app.schema_forms.fields import (
    CheckboxField,
    ChoiceListField,
    FormNode,
    Group,
    LineListField,
    NodeBasics,
    RowListField,
    SecretField,
    SelectField,
    TextField,
)
from actions_app.schema_forms.posted import (
    MAX_ROWS,
    PostedValues,
    add_row_name,
    display_scalar,
    is_checked,
    last_value,
    posted_row_count,
    remove_row_name,
    row_count_name,
)
from actions_app.schema_forms.validation import join_path, label_for

TRAIL_SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "


@dataclass(frozen=True)
class _Source:
    prefix: str
    posted: PostedValues
    stored_secret_paths: frozenset[str]


def build_field_tree(
    schema: dict[str, Any], *, prefix: str, posted: PostedValues, stored_secret_paths: frozenset[str]
) -> Group:
    """The whole config as a Group whose fields are the top-level settings."""
    source = _Source(prefix, posted, stored_secret_paths)
    basics = NodeBasics(path="", name="", html_name=prefix, schema=schema, label="", trail="", required=True)
    return _build_group(basics, (), source, is_row=False)


def _build(
    schema: dict[str, Any], name: str, parent: str, required: bool, trail: tuple[str, ...], source: _Source
) -> FormNode:
    path = join_path(parent, name)
    label = label_for(name, schema)
    html_name = f"{source.prefix}-{path}"
    basics = NodeBasics(
        path=path,
        name=name,
        html_name=html_name,
        schema=schema,
        label=label,
        trail=TRAIL_SEPARATOR.join((*trail, label)),
        required=required,
    )
    raw = last_value(source.posted, html_name)
    schema_type = schema["type"]
    if schema_type == "object":
        return _build_group(basics, (*trail, label), source, is_row=False)
    if schema_type == "array":
        items = schema["items"]
        if items["type"] == "object":
            return _build_rows(basics, (*trail, label), source)
        if "enum" in items:
            selected = source.posted.get(html_name, [])
            return ChoiceListField(**basics, selected=selected, choices=_choices(items))
        return LineListField(**basics, raw=raw, item_schema=items)
    if schema_type == "boolean":
        # An unticked box is a valid false, so "required" would only mislead (aria-required means "must tick").
        basics["required"] = False
        return CheckboxField(**basics, checked=is_checked(raw))
    if "enum" in schema:
        return SelectField(**basics, raw=raw, choices=_choices(schema))
    if schema.get("writeOnly"):
        return SecretField(**basics, raw=raw, has_stored_value=path in source.stored_secret_paths)
    return TextField(**basics, raw=raw)


def _build_group(basics: NodeBasics, trail: tuple[str, ...], source: _Source, *, is_row: bool) -> Group:
    schema = basics["schema"]
    required_names = set(schema.get("required", []))
    fields = [
        _build(child_schema, name, basics["path"], name in required_names, trail, source)
        for name, child_schema in schema.get("properties", {}).items()
    ]
    return Group(**basics, fields=fields, is_row=is_row)


def _build_rows(basics: NodeBasics, trail: tuple[str, ...], source: _Source) -> RowListField:
    list_path = basics["path"]
    items = basics["schema"]["items"]
    item_title = items.get("title") or "Row"
    rows = []
    for index in range(posted_row_count(source.posted, source.prefix, list_path)):
        row_label = f"{item_title} {index + 1}"
        row_path = join_path(list_path, index)
        row_basics = NodeBasics(
            path=row_path,
            name=str(index),
            html_name=f"{source.prefix}-{row_path}",
            schema=items,
            label=row_label,
            trail=TRAIL_SEPARATOR.join((*trail, row_label)),
            required=True,
        )
        row = _build_group(row_basics, (*trail, row_label), source, is_row=True)
        row.remove_button_name = remove_row_name(source.prefix, list_path, index)
        rows.append(row)
    return RowListField(
        **basics,
        rows=rows,
        max_rows=min(basics["schema"].get("maxItems", MAX_ROWS), MAX_ROWS),
        add_button_name=add_row_name(source.prefix, list_path),
        row_count_name=row_count_name(source.prefix, list_path),
    )


def _choices(schema: dict[str, Any]) -> dict[str, Any]:
    return {display_scalar(value): value for value in schema["enum"]}


def walk(node: FormNode) -> list[FormNode]:
    """The node and every field under it, in the order they are shown."""
    nodes = [node]
    for child in node.children():
        nodes.extend(walk(child))
    return nodes
