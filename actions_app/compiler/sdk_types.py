"""The Action SDK declarations (`sdk.d.ts`) that custom actions are type-checked against.

One text serves both sides: the browser editor loads it with Monaco's `addExtraLib` for completion and
squiggles, and the server compiles against it when a version is saved, so both report the same errors.
It is a script file (no import/export), so every declaration is global and the operator's module uses
`ActionInput`, `ActionResult` and `console` without importing anything — the sandbox has no module loader.

`ActionInput` and `ActionResult` follow contract §3 exactly; only `context.config` is narrowed from
`Record<string, unknown>` to a `Config` interface generated from the action's config JSON Schema.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from actions_app.triggers import ALL_TRIGGERS

# Any key that is not a plain ASCII identifier is written as a quoted string: always valid TypeScript.
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# Bounds the recursion on operator-written schemas; deeper settings are typed `unknown`.
_MAX_SCHEMA_DEPTH = 16
_INDENT = "  "
_OPEN_CONFIG = "{\n" + _INDENT + "[key: string]: unknown;\n}"

_SDK_HEAD = """\
// Action SDK for custom actions. Generated for this action's config schema; do not edit.
// Declarations are global: use them in action.ts without imports.

/** The flow slot an execution runs in. */
type TriggerSlot =
{trigger_union};

/** Any value that survives JSON encoding. */
type JSONValue = string | number | boolean | null | JSONValue[] | {{ [key: string]: JSONValue }};

/** This binding's settings, typed from the action's config schema. */
interface Config {config_body}

/** This action's secrets, by name. Their values are replaced by `[secret NAME]` in logs, results and errors. */
interface Secrets {secrets_body}
"""

_SDK_TAIL = """
/** What the platform passes to `execute`. */
interface ActionInput {
  /** The slot this execution runs in, e.g. "login.post-auth". */
  trigger: TriggerSlot;
  user: {
    id: string;
    email: string;
    email_verified: boolean;
    name?: string;
    groups: string[];
    app_metadata: Record<string, unknown>;
  };
  request: {
    ip: string;
    user_agent: string;
    hostname: string;
    country?: string;
  };
  /** Values set by earlier actions of this transaction. */
  state: Record<string, unknown>;
  /** The action's secrets (set on the action's Secrets panel or through the API). */
  secrets: Secrets;
  context: {
    tenant: string;
    flow: string;
    transaction_id: string;
    action: { slug: string; version: string };
    /** This binding's config, valid against the action's config schema. */
    config: Config;
    /** 0..100 from the platform's risk engine. */
    risk: { score: number };
  };
}

/** What `execute` resolves to. Which kinds a slot accepts depends on the trigger. */
type ActionResult =
  | { kind: "continue"; claims?: Record<string, JSONValue>; state?: Record<string, JSONValue> }
  | { kind: "block"; reason: string }
  | { kind: "demand_mfa"; reason?: string }
  | { kind: "redirect"; /** An absolute https URL. */ url: string };

// Declared the way lib.dom.d.ts declares it, so the two merge cleanly if an editor also loads the DOM lib.
/** Captured into the execution log (the first 8 KiB are kept). */
interface Console {
  log(...data: unknown[]): void;
  info(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
}
declare var console: Console;
"""


def sdk_declarations(config_schema: dict[str, Any], secret_names: Iterable[str] = ()) -> str:
    """The `sdk.d.ts` text for an action whose binding config follows `config_schema` and that has
    the secrets `secret_names` (none: an empty `Secrets`, so any `input.secrets.X` is a type error)."""
    trigger_union = "\n".join(f"  | {json.dumps(trigger)}" for trigger in ALL_TRIGGERS)
    head = _SDK_HEAD.format(
        trigger_union=trigger_union,
        config_body=config_type_from_schema(config_schema),
        secrets_body=secrets_type(secret_names),
    )
    return head + _SDK_TAIL


def secrets_type(secret_names: Iterable[str]) -> str:
    """`{ readonly NAME: string; … }` for the names (secret names are plain identifiers)."""
    names = sorted({name for name in secret_names if _IDENTIFIER.match(name)})
    if not names:
        return "{}"
    return "{\n" + "".join(f"{_INDENT}readonly {name}: string;\n" for name in names) + "}"


def config_type_from_schema(config_schema: dict[str, Any]) -> str:
    """The `{ ... }` object type for `interface Config`, from the config's JSON Schema.

    Required settings are non-optional, the rest `?:`; titles and descriptions become doc comments
    so the editor shows them on hover. A schema without properties (empty or unsupported) gives an
    open `{ [key: string]: unknown; }`, matching the contract's `Record<string, unknown>`.
    """
    if not isinstance(config_schema, dict) or not isinstance(config_schema.get("properties"), dict):
        return _OPEN_CONFIG
    if not config_schema["properties"]:
        return _OPEN_CONFIG
    return _object_type(config_schema, depth=0)


def _object_type(schema: dict[str, Any], depth: int) -> str:
    properties: dict[str, Any] = schema["properties"]
    required = schema.get("required")
    required_names = {name for name in required if isinstance(name, str)} if isinstance(required, list) else set()
    member_indent = _INDENT * (depth + 1)
    members: list[str] = []
    for name, property_schema in properties.items():
        doc_comment = _doc_comment(property_schema, member_indent)
        if doc_comment:
            members.append(doc_comment)
        optional_mark = "" if name in required_names else "?"
        type_text, _ = _type_of(property_schema, depth + 1)
        members.append(f"{member_indent}{_property_name(name)}{optional_mark}: {type_text};")
    return "{\n" + "\n".join(members) + "\n" + _INDENT * depth + "}"


def _type_of(schema: Any, depth: int) -> tuple[str, bool]:
    """The TypeScript type for `schema`, and whether that text is a bare union (needs parentheses before `[]`)."""
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        return "unknown", False
    if "const" in schema:
        return _literal_type(schema["const"]), False
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _union([_literal_type(value) for value in schema["enum"]])
    schema_type = schema.get("type")
    if isinstance(schema_type, list):
        return _union([_type_of({**schema, "type": one_type}, depth)[0] for one_type in schema_type])
    if schema_type is None and isinstance(schema.get("properties"), dict):
        schema_type = "object"
    if schema_type is None:
        branches = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(branches, list) and branches:
            return _union([_type_of(branch, depth)[0] for branch in branches])
        return "unknown", False
    return _named_type(schema, schema_type, depth), False


def _named_type(schema: dict[str, Any], schema_type: Any, depth: int) -> str:
    if schema_type == "string":
        return "string"
    if schema_type in ("integer", "number"):
        return "number"
    if schema_type == "boolean":
        return "boolean"
    if schema_type == "null":
        return "null"
    if schema_type == "array":
        item_type, item_is_union = _type_of(schema.get("items"), depth)
        return f"({item_type})[]" if item_is_union else f"{item_type}[]"
    if schema_type == "object":
        if isinstance(schema.get("properties"), dict) and schema["properties"]:
            return _object_type(schema, depth)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"Record<string, {_type_of(extra, depth)[0]}>"
        return "Record<string, unknown>"
    return "unknown"


def _union(members: list[str]) -> tuple[str, bool]:
    distinct = list(dict.fromkeys(members))
    if "unknown" in distinct:
        return "unknown", False
    return " | ".join(distinct), len(distinct) > 1


def _literal_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value) if math.isfinite(value) else "number"
    # Objects and arrays in enum/const are rare; their exact literal types would only add noise.
    return "JSONValue"


def _property_name(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _doc_comment(schema: Any, indent: str) -> str:
    if not isinstance(schema, dict):
        return ""
    paragraphs = [str(schema[key]).strip() for key in ("title", "description") if isinstance(schema.get(key), str)]
    paragraphs = list(dict.fromkeys(paragraph for paragraph in paragraphs if paragraph))
    if "default" in schema:
        paragraphs.append(f"@default {json.dumps(schema['default'])}")
    if not paragraphs:
        return ""
    # "*/" inside the text would end the comment early and break the declarations.
    lines = "\n\n".join(paragraphs).replace("*/", "*\\/").splitlines()
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */"
    body = "\n".join(f"{indent} * {line}".rstrip() for line in lines)
    return f"{indent}/**\n{body}\n{indent} */"
