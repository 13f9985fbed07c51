"""The one-line summary a collapsed binding card shows of its config: each top-level setting as
typed (so a card collapsed with unsaved edits still tells the truth), secrets never."""

from __future__ import annotations

from dataclasses import dataclass

from actions_app.schema_forms import ConfigForm
from actions_app.schema_forms.fields import (
    CheckboxField,
    ChoiceListField,
    FormNode,
    Group,
    LineListField,
    RowListField,
    SecretField,
    SelectField,
    TextField,
)

# The line is cut by CSS; this only keeps a pasted essay out of the page twice.
MAX_SUMMARY_TEXT = 120


@dataclass(frozen=True)
class SettingSummary:
    name: str  # the setting's key in the config, as the API and the audit log name it
    text: str
    # The form control(s) the text is read from again in the browser as the operator types;
    # "" for a list of rows, whose count only changes through a round trip.
    html_name: str
    kind: str  # text, checkbox, choices or lines: how flow_editor.js reads the control


def config_summary(form: ConfigForm | None) -> list[SettingSummary]:
    """The top-level settings of `form` as short texts, in schema order; write-only ones left out."""
    if form is None:
        return []
    items = [_summary(node) for node in form.fields]
    return [item for item in items if item is not None]


def _summary(node: FormNode) -> SettingSummary | None:
    if isinstance(node, SecretField):
        return None
    if isinstance(node, CheckboxField):
        return SettingSummary(node.name, "yes" if node.checked else "no", node.html_name, "checkbox")
    if isinstance(node, TextField | SelectField):
        return SettingSummary(node.name, _cut(node.raw.strip()), node.html_name, "text")
    if isinstance(node, LineListField):
        lines = [line.strip() for line in node.raw.splitlines() if line.strip()]
        return SettingSummary(node.name, _cut(", ".join(lines)), node.html_name, "lines")
    if isinstance(node, ChoiceListField):
        return SettingSummary(node.name, _cut(", ".join(node.selected)), node.html_name, "choices")
    if isinstance(node, RowListField):
        count = len(node.rows)
        return SettingSummary(node.name, f"{count} row{'' if count == 1 else 's'}", "", "")
    if isinstance(node, Group):
        return None  # a nested object has no one short value; its fields are one click away
    return None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY_TEXT else text[: MAX_SUMMARY_TEXT - 1] + "…"
