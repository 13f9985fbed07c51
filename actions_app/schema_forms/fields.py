"""The tree of form fields a config schema becomes, and how each reads its value back as JSON.

Every field keeps the raw text the user submitted, so a form with errors shows exactly what was
typed (secrets excepted: their templates never print a value). Only `collect` turns text into JSON.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, TypedDict

from django.utils.text import capfirst

from actions_app.schema_forms.validation import number_expectation
from core.api_types import text_problem

TEMPLATE_DIR = "components/schema_form"
CHOICE_MESSAGE = "Choose one of the available options."
STORED_SECRET_HELP = "Stored — leave blank to keep."

# Plain ASCII decimal notation only: float() and int() would also take "nan", "inf", "1_000" and
# other scripts' digits ("９０", "٩٠"), and \d matches those digits too.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# Longer than any number an operator types; int() refuses text past 4,300 digits with a ValueError.
MAX_NUMBER_TEXT = 100


class Missing(Enum):
    """A setting left empty: left out of the config rather than sent as ""."""

    MISSING = "missing"


MISSING = Missing.MISSING


@dataclass
class CollectContext:
    stored_secrets: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)


def _refused_as_unstorable(context: CollectContext, path: str, text: str) -> bool:
    """Text the database cannot store (a NUL, a lone surrogate) is an error next to its field."""
    problem = text_problem(text)
    if problem:
        context.add_error(path, capfirst(problem) + ".")
    return problem is not None


class NodeBasics(TypedDict):
    path: str
    name: str
    html_name: str
    schema: dict[str, Any]
    label: str
    trail: str
    required: bool


@dataclass(kw_only=True, eq=False)
class FormNode:
    path: str  # dotted path in the config, "" for the whole config
    name: str  # property name (or row index) within the parent
    html_name: str
    schema: dict[str, Any]
    label: str
    trail: str  # the labels of the enclosing groups and rows, then its own: names it in the error summary
    required: bool
    errors: list[str] = field(default_factory=list)
    autofocus: bool = False

    template_name: ClassVar[str] = ""

    @property
    def help_text(self) -> str:
        return str(self.schema.get("description", ""))

    @property
    def dom_id(self) -> str:
        return f"field-{self.html_name}"

    @property
    def input_id(self) -> str:
        return f"id_{self.html_name}"

    @property
    def anchor_id(self) -> str:
        """Where the error summary links to."""
        return self.input_id

    @property
    def error_id(self) -> str:
        return f"errors-{self.html_name}"

    @property
    def help_id(self) -> str:
        return f"help-{self.html_name}"

    @property
    def described_by(self) -> str:
        ids = [self.error_id] if self.errors else []
        if self.help_text:
            ids.append(self.help_id)
        return " ".join(ids)

    def children(self) -> list[FormNode]:
        return []

    def is_blank(self) -> bool:
        raise NotImplementedError

    def collect(self, context: CollectContext) -> Any:
        """The JSON value for this field, MISSING when left empty; problems go to context.errors."""
        raise NotImplementedError


@dataclass(kw_only=True, eq=False)
class TextField(FormNode):
    raw: str
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/input.html"

    @property
    def inputmode(self) -> str:
        # type="number"/"email" would let the browser reject or silently drop what was typed;
        # inputmode only picks the keyboard.
        schema_type = self.schema.get("type")
        if schema_type == "integer":
            return "numeric"
        if schema_type == "number":
            return "decimal"
        return {"email": "email", "uri": "url"}.get(str(self.schema.get("format")), "")

    def is_blank(self) -> bool:
        return not self.raw.strip()

    def collect(self, context: CollectContext) -> Any:
        text = self.raw.strip()
        if not text:
            return MISSING
        if _refused_as_unstorable(context, self.path, text):
            return MISSING
        value = parse_scalar(text, self.schema)
        if value is MISSING:
            context.add_error(self.path, number_expectation(self.schema))
        return value


@dataclass(kw_only=True, eq=False)
class SecretField(FormNode):
    raw: str  # what was submitted; the template never prints it
    has_stored_value: bool
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/password.html"

    @property
    def stored_help_id(self) -> str:
        return f"stored-{self.html_name}"

    @property
    def length_help_id(self) -> str:
        return f"length-{self.html_name}"

    @property
    def length_rule(self) -> str:
        """The schema's length limits in words, shown before they are broken: what was typed
        into a secret is never shown again, so a refusal costs the operator the whole value."""
        shortest, longest = self.schema.get("minLength"), self.schema.get("maxLength")
        if shortest and longest is not None:
            return f"{shortest} to {longest} characters."
        if shortest:
            return f"At least {shortest} characters."
        if longest is not None:
            return f"At most {longest} characters."
        return ""

    @property
    def described_by(self) -> str:
        ids = [super().described_by]
        if self.length_rule:
            ids.append(self.length_help_id)
        if self.has_stored_value:
            ids.append(self.stored_help_id)
        return " ".join(i for i in ids if i)

    def is_blank(self) -> bool:
        return not self.raw.strip() and not self.has_stored_value

    def collect(self, context: CollectContext) -> Any:
        if not self.raw.strip():
            return context.stored_secrets.get(self.path, MISSING)
        # Used byte for byte: a signing secret may legitimately start or end with a space.
        return self.raw


@dataclass(kw_only=True, eq=False)
class CheckboxField(FormNode):
    checked: bool
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/checkbox.html"

    def is_blank(self) -> bool:
        return not self.checked

    def collect(self, context: CollectContext) -> Any:
        return self.checked


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    selected: bool
    input_id: str


@dataclass(kw_only=True, eq=False)
class SelectField(FormNode):
    raw: str
    choices: dict[str, Any]  # displayed value → enum value
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/select.html"

    @property
    def options(self) -> list[Choice]:
        return [Choice(value, value, value == self.raw, "") for value in self.choices]

    @property
    def offers_empty_choice(self) -> bool:
        # A required select with nothing chosen yet still starts empty, so nobody saves the first option by accident.
        return not self.required or self.raw not in self.choices

    def is_blank(self) -> bool:
        return not self.raw

    def collect(self, context: CollectContext) -> Any:
        if not self.raw:
            return MISSING
        if self.raw not in self.choices:
            context.add_error(self.path, CHOICE_MESSAGE)
            return MISSING
        return self.choices[self.raw]


@dataclass(kw_only=True, eq=False)
class ChoiceListField(FormNode):
    """An array of enum values: one checkbox per value."""

    selected: list[str]
    choices: dict[str, Any]
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/choice_list.html"

    @property
    def anchor_id(self) -> str:
        return f"{self.input_id}-0"

    @property
    def options(self) -> list[Choice]:
        return [
            Choice(value, value, value in self.selected, f"{self.input_id}-{index}")
            for index, value in enumerate(self.choices)
        ]

    def is_blank(self) -> bool:
        return not self.selected

    def collect(self, context: CollectContext) -> Any:
        if any(value not in self.choices for value in self.selected):
            context.add_error(self.path, CHOICE_MESSAGE)
            return MISSING
        # In the schema's order, whatever order the browser sent them in; an empty list is kept
        # because unticking everything is a choice (leaving the setting out would bring back its default).
        return [choice for value, choice in self.choices.items() if value in self.selected]


@dataclass(kw_only=True, eq=False)
class LineListField(FormNode):
    """An array of free-form scalars: a textarea with one item per line."""

    raw: str
    item_schema: dict[str, Any]
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/line_list.html"

    @property
    def help_text(self) -> str:
        return " ".join(filter(None, [super().help_text, "One per line."]))

    @property
    def textarea_rows(self) -> int:
        return max(3, self.raw.count("\n") + 2)

    def is_blank(self) -> bool:
        return not self.raw.strip()

    def collect(self, context: CollectContext) -> Any:
        items = []
        for line in self.raw.splitlines():
            text = line.strip()
            if not text:
                continue
            if _refused_as_unstorable(context, self.path, text):
                items.append(MISSING)
                continue
            item = parse_scalar(text, self.item_schema)
            if item is MISSING:
                context.add_error(self.path, f"“{text}”: {number_expectation(self.item_schema)}")
            items.append(item)
        return MISSING if MISSING in items else items


@dataclass(kw_only=True, eq=False)
class Group(FormNode):
    """An object: a fieldset of its properties; also each row of a list of rows."""

    fields: list[FormNode]
    is_row: bool = False
    remove_button_name: str = ""
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/group.html"

    @property
    def anchor_id(self) -> str:
        return self.dom_id

    def children(self) -> list[FormNode]:
        return list(self.fields)

    def is_blank(self) -> bool:
        return all(child.is_blank() for child in self.fields)

    def collect(self, context: CollectContext) -> Any:
        if not self.required and self.is_blank():
            return MISSING
        values = {child.name: child.collect(context) for child in self.fields}
        return {name: value for name, value in values.items() if value is not MISSING}


@dataclass(kw_only=True, eq=False)
class RowListField(FormNode):
    """An array of objects: repeatable rows with Add/Remove buttons that work without JavaScript."""

    rows: list[Group]
    max_rows: int
    add_button_name: str
    row_count_name: str
    focus_add_button: bool = False
    template_name: ClassVar[str] = f"{TEMPLATE_DIR}/rows.html"

    @property
    def anchor_id(self) -> str:
        return self.dom_id

    @property
    def can_add(self) -> bool:
        return len(self.rows) < self.max_rows

    def children(self) -> list[FormNode]:
        return list(self.rows)

    def is_blank(self) -> bool:
        return not self.rows

    def collect(self, context: CollectContext) -> Any:
        return [row.collect(context) for row in self.rows]


def number_from_text(text: str) -> int | float | None:
    """A number typed in plain ASCII decimal notation ("12", "-0.5", "1e3") as an int when it is
    written as a whole number, else a finite float; None for anything else."""
    if len(text) > MAX_NUMBER_TEXT:
        return None
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    number = float(text) if _NUMBER_TEXT.fullmatch(text) else math.inf
    return number if math.isfinite(number) else None


def parse_scalar(text: str, schema: dict[str, Any]) -> Any:
    """Typed text as the schema's type; MISSING when it is not a number where one is needed."""
    schema_type = schema.get("type")
    if schema_type == "integer":
        number = number_from_text(text)
        return number if isinstance(number, int) else MISSING
    if schema_type == "number":
        number = number_from_text(text)
        return MISSING if number is None else number
    return text
