"""Which JSON Schemas config forms can render, and why a schema is refused.

Operators write the schemas of custom actions, so anything jsonschema accepts may arrive here. The
form generator handles a deliberately small subset; this module names every construct outside it
with its location, so the editor can show the operator what to change instead of failing later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

from actions_app.schema_forms.ecma_patterns import (
    PatternNotSupported,
    PatternTooCostly,
    check_schema_pattern,
    match_work_budget,
    pattern_matches,
    schema_pattern_budget,
)
from actions_app.schema_forms.formats import SUPPORTED_FORMATS, config_format_checker


def _pattern_as_in_ecmascript(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """`pattern` as JSON Schema means it (ECMA-262), matched in linear time (ecma_patterns)."""
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = pattern_matches(pattern, instance)
    except PatternNotSupported as refusal:
        # Stored schemas were checked when saved; this is a schema that never was.
        yield ValidationError(f"The pattern {pattern!r} cannot be checked: {refusal}.", validator="pattern_unusable")
        return
    except PatternTooCostly:
        message = "This value is too long to check against the setting's pattern; shorten it."
        yield ValidationError(message, validator="pattern_budget")
        return
    if not matched:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Checks configs and schema defaults wherever they are checked: config forms, the API, flow saves.
ConfigValidator = validators.extend(Draft202012Validator, {"pattern": _pattern_as_in_ecmascript})

# The meta-schema marks `pattern` values with format "regex"; jsonschema would check them with
# Python's `re`, which refuses ECMA-262 syntax such as (?<name>…) and accepts what RE2 cannot run.
_META_SCHEMA_FORMATS = FormatChecker(formats=())


@_META_SCHEMA_FORMATS.checks("regex", raises=PatternNotSupported)
def _is_usable_pattern(value: Any) -> bool:
    if isinstance(value, str):
        check_schema_pattern(value)
    return True


_META_SCHEMA_VALIDATOR = Draft202012Validator(Draft202012Validator.META_SCHEMA, format_checker=_META_SCHEMA_FORMATS)
# Objects and arrays of the schema's JSON (a nested setting takes two: properties, then its name):
# deeper than any form an operator can fill, and far from where jsonschema runs out of stack
# (about 100 nested settings).
MAX_SCHEMA_DEPTH = 64

DIALECT_URIS = {"https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#"}

SCALAR_TYPES = {"string", "integer", "number"}

# Keywords that only describe a field; they never change what the form must render.
_ANNOTATIONS = {"title", "description", "default", "examples", "$comment", "deprecated", "$defs", "definitions"}

_KEYWORDS_BY_TYPE: dict[str, set[str]] = {
    "string": {"minLength", "maxLength", "pattern", "format", "enum", "not", "writeOnly"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "enum"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "enum"},
    "boolean": set(),
    "array": {"items", "minItems", "maxItems", "uniqueItems"},
    "object": {"properties", "required", "additionalProperties", "oneOf", "anyOf", "dependentRequired"},
}

# Every 2020-12 keyword that constrains or shapes an instance. Keys outside this list and the
# annotations (vendor extensions such as x-order) are ignored, as jsonschema ignores them.
_SCHEMA_KEYWORDS = {
    "$ref", "$dynamicRef", "$anchor", "$dynamicAnchor", "$vocabulary",
    "prefixItems", "items", "contains", "minContains", "maxContains",
    "properties", "patternProperties", "additionalProperties", "propertyNames", "dependentSchemas",
    "if", "then", "else", "allOf", "anyOf", "oneOf", "not",
    "unevaluatedItems", "unevaluatedProperties",
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties", "required", "dependentRequired",
    "format", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "contentSchema",
    "dependencies",
}  # fmt: skip

_KEYWORD_ADVICE = {
    "$ref": "write the referenced schema out in full",
    "$dynamicRef": "write the referenced schema out in full",
    "patternProperties": "list every setting under properties",
    "prefixItems": "tuple arrays cannot be shown as a list of rows",
    "allOf": "merge the subschemas into one",
    "if": "conditional schemas cannot be shown as one form",
    "then": "conditional schemas cannot be shown as one form",
    "else": "conditional schemas cannot be shown as one form",
    "readOnly": "config forms only show settings the operator can edit",
    "dependencies": "it is not a 2020-12 keyword; use dependentRequired",
}


@dataclass(frozen=True)
class SchemaProblem:
    """One reason a schema cannot become a config form; `path` points into the schema ("/" is its root)."""

    path: str
    message: str


class UnsupportedSchema(Exception):
    """Raised by `build_config_form` for a schema that `check_schema_supported` finds problems in."""

    def __init__(self, problems: list[SchemaProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(problem.message for problem in problems))


def check_schema_supported(schema: dict[str, Any]) -> list[SchemaProblem]:
    """Every reason `schema` cannot be used as a config schema; [] when it can."""
    if not isinstance(schema, dict):
        return [SchemaProblem("/", "A config schema must be a JSON object with type: object.")]
    too_deep_at = _first_path_deeper_than(schema, MAX_SCHEMA_DEPTH)
    if too_deep_at is not None:
        location = pointer(too_deep_at)
        message = f"The schema is nested too deeply at {location} (more than {MAX_SCHEMA_DEPTH} levels of JSON)."
        return [SchemaProblem(location, message)]
    with schema_pattern_budget():
        meta_error = next(iter(_META_SCHEMA_VALIDATOR.iter_errors(schema)), None)
    if meta_error is not None:
        location = pointer(meta_error.absolute_path)
        if meta_error.validator == "format" and meta_error.validator_value == "regex":
            return [SchemaProblem(location, f"The pattern at {location} cannot be used: {meta_error.cause}.")]
        return [SchemaProblem(location, f"The schema is not valid JSON Schema at {location}: {meta_error.message}")]
    problems: list[SchemaProblem] = []
    dialect = schema.get("$schema")
    if dialect is not None and dialect not in DIALECT_URIS:
        problems.append(SchemaProblem("/$schema", f"Only JSON Schema draft 2020-12 is supported, not {dialect}."))
    if schema.get("type") != "object":
        problems.append(SchemaProblem("/", "The top level of a config schema must be an object (type: object)."))
        return problems
    problems.extend(_object_problems(schema, "", is_root=True, in_array=False))
    return problems


def _first_path_deeper_than(value: Any, limit: int) -> list[Any] | None:
    """The path of a value nested more than `limit` objects/arrays deep, or None (no recursion)."""
    pending: list[tuple[Any, list[Any]]] = [(value, [])]
    while pending:
        item, path = pending.pop()
        if len(path) > limit:
            return path
        if isinstance(item, dict):
            pending.extend((child, [*path, key]) for key, child in item.items())
        elif isinstance(item, list):
            pending.extend((child, [*path, index]) for index, child in enumerate(item))
    return None


def pointer(parts: Iterable[Any]) -> str:
    """A JSON pointer such as /properties/rules/items, with "/" for the root."""
    return "/" + "/".join(_escape(part) for part in parts)


def _escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _where(path: str) -> str:
    return path or "/"


def _schema_problems(schema: Any, path: str, *, in_array: bool) -> Iterator[SchemaProblem]:
    where = _where(path)
    if not isinstance(schema, dict):
        yield SchemaProblem(where, f"A true/false schema at {where} is not supported in config forms; give a type.")
        return
    schema_type = schema.get("type")
    known_type = schema_type if isinstance(schema_type, str) and schema_type in _KEYWORDS_BY_TYPE else None
    keyword_problems = list(_keyword_problems(schema, known_type, where))
    yield from keyword_problems
    if schema_type is None:
        # {"anyOf": [...]} without a type is better explained by the anyOf problem alone.
        if not keyword_problems:
            yield SchemaProblem(where, f"Missing type at {where}: config forms need a type for every setting.")
        return
    if isinstance(schema_type, list):
        yield SchemaProblem(where, f"A list of types at {where} is not supported in config forms; choose one type.")
        return
    if known_type is None:
        yield SchemaProblem(where, f"Type {schema_type} at {where} is not supported in config forms.")
        return
    if schema_type == "object":
        shape_problems = list(_object_problems(schema, path, is_root=False, in_array=in_array))
    elif schema_type == "array":
        shape_problems = list(_array_problems(schema, path))
    else:
        shape_problems = list(_scalar_problems(schema, schema_type, where, in_array=in_array))
    yield from shape_problems
    # Only a schema the form supports can safely check its default (a $ref in it would not resolve).
    if "default" in schema and not keyword_problems and not shape_problems:
        yield from _default_problems(schema, where)


def _keyword_problems(schema: dict[str, Any], schema_type: str | None, where: str) -> Iterator[SchemaProblem]:
    """Keywords outside what the form supports for `schema_type` (for an unknown type: structural ones)."""
    if schema_type:
        type_keywords = _KEYWORDS_BY_TYPE[schema_type]
    else:
        # Without a usable type only the combinators can say what is wrong; the rest waits for a type.
        type_keywords = set().union(*_KEYWORDS_BY_TYPE.values()) - {"oneOf", "anyOf", "not"}
    allowed = type_keywords | _ANNOTATIONS | {"type"}
    for keyword in schema:
        if keyword in allowed or keyword not in _SCHEMA_KEYWORDS:
            continue
        message = f"{keyword} at {where} is not supported in config forms"
        if keyword in _KEYWORD_ADVICE:
            message += f": {_KEYWORD_ADVICE[keyword]}"
        elif keyword in _KEYWORDS_BY_TYPE["string"] | _KEYWORDS_BY_TYPE["integer"] | _KEYWORDS_BY_TYPE["array"]:
            message += f" on a field of type {schema_type}"
        yield SchemaProblem(where, message + ".")


def _object_problems(schema: dict[str, Any], path: str, *, is_root: bool, in_array: bool) -> Iterator[SchemaProblem]:
    where = _where(path)
    if is_root:
        yield from _keyword_problems(schema, "object", where)
    properties = schema.get("properties")
    if properties is None and not is_root:
        yield SchemaProblem(where, f"The object at {where} needs properties: free-form objects are not supported.")
    properties = properties or {}
    if isinstance(schema.get("additionalProperties"), dict):
        yield SchemaProblem(
            where, f"additionalProperties as a schema at {where} is not supported in config forms; use true or false."
        )
    for name in schema.get("required", []):
        if name not in properties:
            yield SchemaProblem(f"{path}/required", f"Required setting “{name}” at {where} is not under properties.")
    for combinator in ("oneOf", "anyOf"):
        if combinator not in schema:
            continue
        if not is_required_only(schema[combinator]):
            yield SchemaProblem(
                f"{path}/{combinator}",
                f"{combinator} at {where} is not supported in config forms; "
                "only branches that each list required settings are.",
            )
            continue
        for branch in schema[combinator]:
            for name in branch["required"]:
                if name not in properties:
                    yield SchemaProblem(f"{path}/{combinator}", f"“{name}” in {combinator} is not under properties.")
    for names in schema.get("dependentRequired", {}).values():
        for name in names:
            if name not in properties:
                yield SchemaProblem(
                    f"{path}/dependentRequired", f"“{name}” in dependentRequired is not under properties."
                )
    for name, child in properties.items():
        child_path = f"{path}/properties/{_escape(name)}"
        if "." in name or not name:
            yield SchemaProblem(
                child_path, f"Setting name “{name}” at {child_path} must be non-empty and have no dots."
            )
            continue
        yield from _schema_problems(child, child_path, in_array=in_array)


def _array_problems(schema: dict[str, Any], path: str) -> Iterator[SchemaProblem]:
    where = _where(path)
    items = schema.get("items")
    if not isinstance(items, dict):
        if "prefixItems" in schema:
            return  # already reported, with a better reason
        yield SchemaProblem(where, f"The array at {where} needs an items schema to be shown as a list.")
        return
    items_path = f"{path}/items"
    item_type = items.get("type")
    if item_type == "array":
        yield SchemaProblem(items_path, f"Arrays of arrays at {items_path} are not supported in config forms.")
    elif item_type == "boolean":
        yield SchemaProblem(
            items_path, f"Arrays of true/false values at {items_path} are not supported in config forms."
        )
    else:
        yield from _schema_problems(items, items_path, in_array=True)


def _scalar_problems(
    schema: dict[str, Any], schema_type: str, where: str, *, in_array: bool
) -> Iterator[SchemaProblem]:
    if "enum" in schema and not all(_matches_type(value, schema_type) for value in schema["enum"]):
        yield SchemaProblem(where, f"Every enum value at {where} must be of type {schema_type}.")
    if "format" in schema and schema["format"] not in SUPPORTED_FORMATS:
        supported = ", ".join(sorted(SUPPORTED_FORMATS))
        yield SchemaProblem(where, f"Format {schema['format']} at {where} is not supported (use one of {supported}).")
    not_schema = schema.get("not")
    if not_schema is not None and not (isinstance(not_schema, dict) and set(not_schema) == {"enum"}):
        yield SchemaProblem(where, f"not at {where} is not supported in config forms; only not: {{enum: [...]}} is.")
    if schema.get("writeOnly") and in_array:
        # A stored secret is matched to its field by path; inside a list, removing a row would
        # shift paths and hand one row's secret to another.
        yield SchemaProblem(where, f"writeOnly at {where} is not supported inside a list in config forms.")


def _default_problems(schema: dict[str, Any], where: str) -> Iterator[SchemaProblem]:
    validator = ConfigValidator(schema, format_checker=config_format_checker)
    with match_work_budget():
        errors = list(validator.iter_errors(schema["default"]))
    for error in errors:
        yield SchemaProblem(where, f"The default at {where} is not valid: {error.message}")


def is_required_only(branches: Any) -> bool:
    """True for oneOf/anyOf branches like [{"required": ["value"]}, {"required": ["from"]}]."""
    return (
        isinstance(branches, list)
        and bool(branches)
        and all(isinstance(branch, dict) and set(branch) == {"required"} for branch in branches)
    )


def _matches_type(value: Any, schema_type: str) -> bool:
    if isinstance(value, bool):
        return False
    if schema_type == "string":
        return isinstance(value, str)
    if schema_type == "integer":
        return isinstance(value, int)
    return isinstance(value, int | float)
