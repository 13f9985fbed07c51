"""ConfigForm: a config schema as an HTML form, bound to submitted values or prefilled from a config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from actions_app.schema_forms.field_tree import build_field_tree, walk
from actions_app.schema_forms.fields import (
    ChoiceListField,
    CollectContext,
    FormNode,
    Group,
    LineListField,
    RowListField,
)
from actions_app.schema_forms.posted import (
    RowChange,
    apply_row_change,
    defaults_for,
    encode_config,
    find_row_change,
    normalise_posted,
)
from actions_app.schema_forms.support import UnsupportedSchema, check_schema_supported
from actions_app.schema_forms.validation import validate_binding_config
from core.http import parse_count

FORM_TEMPLATE = "components/schema_form/form.html"


@dataclass(frozen=True)
class SummaryItem:
    """One line of the error summary at the top of the form."""

    label: str
    message: str
    anchor_id: str


class ConfigForm:
    """A config form. Bound when built with `data`; call `is_valid()` before reading `cleaned_config`.

    When the user pressed a list's Add row / Remove row button, `row_change_requested` is True and
    `is_valid()` is False without showing errors: the view re-renders the form instead of saving.
    """

    def __init__(
        self,
        schema: dict[str, Any],
        *,
        data: Mapping[str, Any] | None = None,
        initial: dict[str, Any] | None = None,
        prefix: str = "config",
        stored_secrets: dict[str, Any] | None = None,
        template: str | None = None,
    ) -> None:
        self.schema = schema
        # The platform template whose config this is (None for a custom action): its registered
        # checks run as they do wherever else its config is checked.
        self.template = template
        self.prefix = prefix
        self.is_bound = data is not None
        self.stored_secrets = dict(stored_secrets or {})
        self.row_change: RowChange | None = None
        if data is not None:
            posted = normalise_posted(data)
            self.row_change = find_row_change(posted, schema, prefix)
            if self.row_change is not None:
                posted = apply_row_change(posted, self.row_change, schema, prefix)
        else:
            # A new config starts from the schema's defaults; an existing one shows exactly what is stored.
            config = initial if initial is not None else defaults_for(schema)
            posted = encode_config(schema, config, prefix)
        self.root: Group = build_field_tree(
            schema, prefix=prefix, posted=posted, stored_secret_paths=frozenset(self.stored_secrets)
        )
        self._validated = False
        self._form_errors: list[str] = []
        self._cleaned_config: dict[str, Any] | None = None
        if self.row_change is not None:
            self._focus_after_row_change(self.row_change)

    @property
    def row_change_requested(self) -> bool:
        return self.row_change is not None

    @property
    def fields(self) -> list[FormNode]:
        """The top-level settings, in schema order, for templates."""
        return self.root.fields

    def is_valid(self) -> bool:
        if not self.is_bound or self.row_change_requested:
            return False
        self._validate()
        return self._cleaned_config is not None

    @property
    def cleaned_config(self) -> dict[str, Any]:
        """The submitted config as JSON, valid against the schema (stored secrets filled in)."""
        if not self.is_valid() or self._cleaned_config is None:
            raise ValueError("cleaned_config is only available when is_valid() is True.")
        return self._cleaned_config

    @property
    def field_errors(self) -> dict[str, list[str]]:
        """Errors by dotted path of the field showing them (`rules.0.url`, or `rules` for the list)."""
        self._validate()
        return {node.path: list(node.errors) for node in walk(self.root) if node.errors and node.path}

    @property
    def form_errors(self) -> list[str]:
        """Errors about the config as a whole, such as a missing choice between two settings."""
        self._validate()
        return list(self._form_errors)

    @property
    def has_errors(self) -> bool:
        return bool(self.form_errors or self.field_errors)

    @property
    def summary(self) -> list[SummaryItem]:
        self._validate()
        return [
            SummaryItem(node.trail, message, node.anchor_id)
            for node in walk(self.root)
            if node.path
            for message in node.errors
        ]

    def render(self) -> SafeString:
        return render_to_string(FORM_TEMPLATE, {"form": self})

    def __str__(self) -> str:
        return self.render()

    def __html__(self) -> str:
        return self.render()

    def _validate(self) -> None:
        if self._validated or not self.is_bound or self.row_change_requested:
            return
        self._validated = True
        context = CollectContext(stored_secrets=self.stored_secrets)
        config = self.root.collect(context)
        nodes_by_path = {node.path: node for node in walk(self.root)}
        for path, messages in context.errors.items():
            nodes_by_path[path].errors.extend(messages)
        for path, messages in validate_binding_config(self.schema, config, template=self.template).items():
            # The value of a field that could not be read was left out, so what the schema says
            # about it ("required", ...) would only repeat the first error less clearly.
            if any(path == failed or path.startswith(f"{failed}.") for failed in context.errors):
                continue
            self._attach(path, messages, nodes_by_path, config)
        if not self._form_errors and not any(node.errors for node in nodes_by_path.values()):
            self._cleaned_config = config

    def _attach(self, path: str, messages: list[str], nodes_by_path: dict[str, FormNode], config: Any) -> None:
        """Put validation errors on the field that shows `path`: itself, or the list it is an item of."""
        shown_at = path
        while shown_at and shown_at not in nodes_by_path:
            shown_at = shown_at.rpartition(".")[0]
        if not shown_at:
            self._form_errors.extend(messages)
            return
        node = nodes_by_path[shown_at]
        if shown_at != path and isinstance(node, LineListField | ChoiceListField):
            item = _value_at(config, path)
            messages = [f"“{item}”: {message}" for message in messages]
        node.errors.extend(message for message in messages if message not in node.errors)

    def _focus_after_row_change(self, change: RowChange) -> None:
        # Without JavaScript the page reloads; autofocus puts the keyboard back where the user was.
        nodes_by_path = {node.path: node for node in walk(self.root)}
        row_list = nodes_by_path.get(change.list_path)
        if not isinstance(row_list, RowListField):
            return
        if change.removed_index is None and row_list.rows:
            first_field = next((node for node in walk(row_list.rows[-1]) if not isinstance(node, Group)), None)
            if isinstance(first_field, RowListField):
                first_field.focus_add_button = True
            elif first_field is not None:
                first_field.autofocus = True
        else:
            row_list.focus_add_button = True


def build_config_form(
    schema: dict[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    initial: dict[str, Any] | None = None,
    prefix: str = "config",
    stored_secrets: dict[str, Any] | None = None,
    template: str | None = None,
) -> ConfigForm:
    """A form for `schema`: bound to `data` (request.POST) or prefilled from `initial` / the defaults.

    `stored_secrets` maps the dotted paths of writeOnly settings to their stored values: never shown,
    but a blank submission of such a field keeps the stored value. `template` is the platform
    template whose config this is, None for a custom action's. Raises UnsupportedSchema.
    """
    problems = check_schema_supported(schema)
    if problems:
        raise UnsupportedSchema(problems)
    return ConfigForm(
        schema, data=data, initial=initial, prefix=prefix, stored_secrets=stored_secrets, template=template
    )


def _value_at(config: Any, path: str) -> Any:
    value = config
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and (index := parse_count(part)) is not None and index < len(value):
            value = value[index]
        else:
            return None
    return value
