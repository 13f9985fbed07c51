"""Validate a config against its schema and say what is wrong in plain words.

A binding's config is checked by `validate_binding_config`, everywhere one is checked (the template
page's "Check configuration", the flow editor's forms, the flow save behind the editor, the flows API
and rollouts, the test endpoint), so a setting refused in one place is refused in all of them with
the same sentence. It is the schema's verdict (`validate_config`) plus the checks a higher app
registers for a platform template's config (`register_template_config_check`): flows_app, which
delivers webhooks, refuses the URLs its SSRF guard would never contact. (A hook rather than an
import, as flows_app sits above this app.) Errors are keyed by dotted path (`rules.0.url`), "" for
the whole config. Messages never quote the value of a writeOnly setting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError

from actions_app.schema_forms.ecma_patterns import match_work_budget
from actions_app.schema_forms.formats import FORMAT_MESSAGES, cidr_suggestion, config_format_checker
from actions_app.schema_forms.support import ConfigValidator, is_required_only
from actions_app.templates_catalog.registry import NAMESPACED_CLAIM_PATTERN

REQUIRED_MESSAGE = "This field is required."
HTTPS_PATTERN = "^https://"
PATTERN_MESSAGES = {
    HTTPS_PATTERN: "Must be an https URL.",
    NAMESPACED_CLAIM_PATTERN: "Use a namespaced name: an http(s) URL with a name after the host, such as "
    "https://example.com/plan.",
}
_MAX_CHOICES_LISTED = 8

_TYPE_MESSAGES = {
    "string": "Enter text.",
    "boolean": "Must be true or false.",
    "array": "Must be a list.",
    "object": "Must be a group of settings (a JSON object).",
    "null": "Must be null.",
}


def validate_config(schema: dict[str, Any], config: Any) -> dict[str, list[str]]:
    """Every problem with `config` under `schema`, as plain sentences by dotted path ("" = whole config).

    `schema` must have passed `check_schema_supported` (or at least the meta-schema check).
    """
    validator = ConfigValidator(schema, format_checker=config_format_checker)
    errors: dict[str, list[str]] = {}
    with match_work_budget():  # every pattern match of this config shares one budget
        found = list(validator.iter_errors(config))
    for error in found:
        for path, message in _describe(error):
            messages = errors.setdefault(path, [])
            if message not in messages:
                messages.append(message)
    return errors


# (template slug, config) -> problems by dotted path; {} when the check has nothing to say.
TemplateConfigCheck = Callable[[str, dict[str, Any]], dict[str, list[str]]]
_TEMPLATE_CONFIG_CHECKS: list[TemplateConfigCheck] = []


def register_template_config_check(check: TemplateConfigCheck) -> None:
    """Have `validate_binding_config` run `check` on every platform template's config as well."""
    if check not in _TEMPLATE_CONFIG_CHECKS:
        _TEMPLATE_CONFIG_CHECKS.append(check)


def validate_binding_config(schema: dict[str, Any], config: Any, *, template: str | None) -> dict[str, list[str]]:
    """Every problem with a binding's `config`: what its schema says and, when it is the config of
    the platform template `template` (None for a custom action), what the registered template
    checks say. The one validator of binding configs (see the module docstring)."""
    errors = validate_config(schema, config)
    if template is None or not isinstance(config, dict):
        return errors
    for check in _TEMPLATE_CONFIG_CHECKS:
        for path, messages in check(template, config).items():
            shown = errors.setdefault(path, [])
            shown.extend(message for message in messages if message not in shown)
    return errors


def join_path(parent: str, name: str | int) -> str:
    return f"{parent}.{name}" if parent else str(name)


def humanise(name: str) -> str:
    """A label for a setting without a title: window_seconds → Window seconds."""
    words = name.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def label_for(name: str, schema: Any) -> str:
    if isinstance(schema, dict) and isinstance(schema.get("title"), str) and schema["title"].strip():
        return str(schema["title"])
    return humanise(name)


def format_number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def number_expectation(schema: dict[str, Any]) -> str:
    """What to type in a numeric field: "Enter a whole number between 1 and 86400."."""
    noun = "a whole number" if schema.get("type") == "integer" else "a number"
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    exclusive_minimum, exclusive_maximum = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    # When both an inclusive and an exclusive bound are given, only the tighter one matters.
    if exclusive_minimum is not None and minimum is not None and minimum > exclusive_minimum:
        exclusive_minimum = None
    if exclusive_maximum is not None and maximum is not None and maximum < exclusive_maximum:
        exclusive_maximum = None
    if exclusive_minimum is None and exclusive_maximum is None and minimum is not None and maximum is not None:
        return f"Enter {noun} between {format_number(minimum)} and {format_number(maximum)}."
    bounds = []
    if exclusive_minimum is not None:
        bounds.append(f"greater than {format_number(exclusive_minimum)}")
    elif minimum is not None:
        bounds.append(f"{format_number(minimum)} or more")
    if exclusive_maximum is not None:
        bounds.append(f"less than {format_number(exclusive_maximum)}")
    elif maximum is not None:
        bounds.append(f"{format_number(maximum)} or less")
    if not bounds:
        return f"Enter {noun}."
    return f"Enter {noun} that is {' and '.join(bounds)}."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _quoted_titles(schema: dict[str, Any], names: list[str]) -> str:
    properties = schema.get("properties", {})
    return " and ".join(f"“{label_for(name, properties.get(name))}”" for name in names)


def _describe(error: ValidationError) -> Iterator[tuple[str, str]]:
    path = ".".join(str(part) for part in error.absolute_path)
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    is_secret = schema.get("writeOnly") is True

    if keyword == "required":
        for name in error.validator_value:
            if isinstance(value, dict) and name not in value:
                yield join_path(path, name), REQUIRED_MESSAGE
    elif keyword == "additionalProperties":
        known = schema.get("properties", {})
        for name in value:
            if name not in known:
                yield path, f"“{name}” is not a known setting."
    elif keyword == "dependentRequired":
        for name, needed in error.validator_value.items():
            if name in value:
                for missing in needed:
                    if missing not in value:
                        message = (
                            f"Give {_quoted_titles(schema, [missing])} when {_quoted_titles(schema, [name])} is given."
                        )
                        yield join_path(path, missing), message
    elif keyword in ("oneOf", "anyOf") and is_required_only(error.validator_value):
        yield path, _combinator_message(keyword, error.validator_value, schema, value)
    else:
        yield path, _describe_value_error(keyword, error, schema, value, is_secret=is_secret)


def _describe_value_error(
    keyword: str, error: ValidationError, schema: dict[str, Any], value: Any, *, is_secret: bool
) -> str:
    expected = error.validator_value
    if keyword == "type":
        if expected in ("integer", "number"):
            return number_expectation(schema)
        if isinstance(expected, str):
            return _TYPE_MESSAGES.get(expected, f"Must be of type {expected}.")
        return str(error.message)
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return number_expectation(schema)
    if keyword == "multipleOf":
        return f"Enter a multiple of {format_number(expected)}."
    if keyword in ("minLength", "maxLength"):
        limit = "at least" if keyword == "minLength" else "no more than"
        message = f"Enter {limit} {_plural(expected, 'character')}"
        return message + "." if is_secret else f"{message} (it has {len(value)})."
    if keyword == "pattern":
        return PATTERN_MESSAGES.get(expected, f"Must match the pattern {expected}.")
    if keyword == "format":
        message = FORMAT_MESSAGES.get(expected, f"Enter a valid {expected}.")
        suggestion = cidr_suggestion(value) if expected == "cidr" and isinstance(value, str) else None
        return f"{message} Did you mean {suggestion}?" if suggestion and not is_secret else message
    if keyword == "enum":
        if len(expected) <= _MAX_CHOICES_LISTED:
            return "Choose one of: " + ", ".join(_display(choice) for choice in expected) + "."
        return "Choose one of the available options."
    if keyword == "const":
        return f"Must be {_display(expected)}."
    if keyword == "not":
        if isinstance(expected, dict) and set(expected) == {"enum"} and isinstance(value, str) and not is_secret:
            return f"“{value}” is reserved and cannot be used."
        return "This value is not allowed."
    if keyword in ("minItems", "maxItems"):
        limit = "at least" if keyword == "minItems" else "no more than"
        return f"Add {limit} {_plural(expected, 'item')}."
    if keyword == "uniqueItems":
        return "Items must be unique."
    return "This value is not valid." if is_secret else str(error.message)


def _combinator_message(keyword: str, branches: list[dict[str, Any]], schema: dict[str, Any], value: Any) -> str:
    """oneOf/anyOf of required-only branches, e.g. "Give either “Constant value” or “Source path”, not both."."""
    options = [_quoted_titles(schema, branch["required"]) for branch in branches]
    given = isinstance(value, dict) and any(all(name in value for name in branch["required"]) for branch in branches)
    if keyword == "anyOf":
        return f"Give at least one of {_or_list(options)}."
    lead = "Give either" if len(options) == 2 else "Give one of"
    if not given:
        return f"{lead} {_or_list(options)}."
    return f"{lead} {_or_list(options)}, not both." if len(options) == 2 else f"Give only one of {_or_list(options)}."


def _display(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
