"""The custom-action compiler: tsc 7 against the Action SDK, our own rules, and the generated Config types.

Each compile runs the real native tsc (about 0.05–0.15 s), so related checks share one source where they can.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from actions_app.compiler import (
    MAX_SOURCE_BYTES,
    CompileLimitError,
    CompileResult,
    Diagnostic,
    compile_action,
    config_type_from_schema,
    sdk_declarations,
)
from actions_app.compiler import tsc as tsc_module
from actions_app.compiler.tsc import parse_tsc_output

VALID_SOURCE = """\
export async function execute(input: ActionInput): Promise<ActionResult> {
  console.log("user", input.user.email);
  if (input.context.risk.score > 90) {
    return { kind: "block", reason: "Too risky" };
  }
  return { kind: "continue", claims: { "https://example.com/plan": "pro" } };
}
"""

EXECUTE_SIGNATURE = "(input: ActionInput): Promise<ActionResult>"
CONTINUE_BODY = '{ return { kind: "continue" }; }'

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "limit": {"type": "integer", "title": "Limit", "description": "Attempts allowed per window."},
        "message": {"type": "string", "description": "Shown when blocked."},
        "mode": {"type": "string", "enum": ["fast", "slow"]},
        "enabled": {"type": "boolean"},
        "ratio": {"type": "number"},
        "domains": {"type": "array", "items": {"type": "string"}},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"group": {"type": "string"}, "url": {"type": "string"}},
                "required": ["group", "url"],
            },
        },
        "x-header-name": {"type": "string"},
    },
    "required": ["limit", "mode", "rules"],
}


def _action(*body_lines: str) -> str:
    """A source whose body starts on line 2, so body line n is source line n + 1."""
    body = "\n".join(f"  {line}" for line in body_lines)
    return (
        "export async function execute(input: ActionInput): Promise<ActionResult> {\n"
        f"{body}\n"
        '  return { kind: "continue" };\n'
        "}\n"
    )


def _codes_by_line(result: CompileResult) -> dict[int, set[str]]:
    codes: dict[int, set[str]] = {}
    for diagnostic in result.diagnostics:
        codes.setdefault(diagnostic.line, set()).add(diagnostic.code)
    return codes


def test_it_compiles_a_valid_action_to_commonjs() -> None:
    result = compile_action(VALID_SOURCE, {})

    assert result.ok, result.diagnostics
    assert result.diagnostics == []
    assert "exports.execute = execute;" in result.js
    assert "async function execute(input) {" in result.js  # types erased, async kept (es2022)
    assert 0 < result.duration_ms < 10_000


def test_it_reports_a_wrong_result_kind_with_line_column_and_code() -> None:
    source = _action("if (input.user.email_verified) {", '  return { kind: "blok" };', "}")

    result = compile_action(source, {})

    assert not result.ok
    [diagnostic] = result.diagnostics
    assert (diagnostic.line, diagnostic.column) == (3, 14)
    assert diagnostic.code in {"TS2322", "TS2820"}  # 7.0 says TS2820 ("Did you mean '"block"'?")
    assert "'\"blok\"'" in diagnostic.message


def test_it_reports_a_type_mismatch_on_the_input() -> None:
    result = compile_action(_action("const n: number = input.user.email;"), {})

    assert result.diagnostics == [
        Diagnostic(line=2, column=9, message="Type 'string' is not assignable to type 'number'.", code="TS2322")
    ]


def test_it_joins_multi_line_messages() -> None:
    source = _action("const toText: (n: number) => string = (s: string) => s;", "console.log(toText);")

    [diagnostic] = compile_action(source, {}).diagnostics

    assert (diagnostic.line, diagnostic.column, diagnostic.code) == (2, 9, "TS2322")
    assert diagnostic.message.splitlines() == [
        "Type '(s: string) => string' is not assignable to type '(n: number) => string'.",
        "  Types of parameters 's' and 'n' are incompatible.",
        "    Type 'number' is not assignable to type 'string'.",
    ]


def test_it_still_emits_javascript_for_a_source_with_type_errors() -> None:
    result = compile_action(_action("const n: number = input.user.email;", "console.info(n);"), {})

    assert not result.ok
    assert "exports.execute = execute;" in result.js
    assert "const n = input.user.email;" in result.js


def test_it_reports_a_syntax_error_with_line_and_column() -> None:
    result = compile_action(_action("const x = ;"), {})

    [diagnostic] = result.diagnostics
    assert (diagnostic.line, diagnostic.column, diagnostic.code) == (2, 13, "TS1109")
    assert diagnostic.message == "Expression expected."


def test_it_checks_config_fields_against_the_schema() -> None:
    source = _action(
        "const config = input.context.config;",
        "const limit: string = config.limit;",  # line 3: number is not a string
        "const unknownField = config.nosuch;",  # line 4: not in the schema
        "const message: string = config.message;",  # line 5: optional, so possibly undefined
        'const mode: "fast" | "slow" = config.mode;',  # line 6: fine, enum is a literal union
        'const wrongMode: "medium" = config.mode;',  # line 7: not one of the literals
        "const firstUrl: string = config.rules[0].url;",  # line 8: fine, required in the item schema
        "const header: string | undefined = config['x-header-name'];",  # line 9: fine, quoted name
        "const ratio: number | undefined = config.ratio;",  # line 10: fine
        "const flag: boolean = config.enabled ?? false;",  # line 11: fine
        "const domains: string[] = config.domains ?? [];",  # line 12: fine
        "console.log(limit, unknownField, message, mode, wrongMode, firstUrl, header, ratio, flag, domains);",
    )

    result = compile_action(source, CONFIG_SCHEMA)

    assert _codes_by_line(result) == {3: {"TS2322"}, 4: {"TS2339"}, 5: {"TS2322"}, 7: {"TS2322"}}
    [unknown_field] = [diagnostic for diagnostic in result.diagnostics if diagnostic.code == "TS2339"]
    assert unknown_field.message == "Property 'nosuch' does not exist on type 'Config'."


def test_it_accepts_any_config_field_without_a_schema() -> None:
    source = _action("const anything: unknown = input.context.config.whatever;", "console.log(anything);")

    assert compile_action(source, {}).ok


def test_config_type_follows_the_schema() -> None:
    config_type = config_type_from_schema(CONFIG_SCHEMA)

    assert "  limit: number;\n" in config_type
    assert "  message?: string;\n" in config_type
    assert '  mode: "fast" | "slow";\n' in config_type
    assert "  enabled?: boolean;\n" in config_type
    assert "  ratio?: number;\n" in config_type
    assert "  domains?: string[];\n" in config_type
    assert "  rules: {\n    group: string;\n    url: string;\n  }[];\n" in config_type
    assert '  "x-header-name"?: string;\n' in config_type


def test_descriptions_become_doc_comments_in_the_declarations() -> None:
    declarations = sdk_declarations(CONFIG_SCHEMA)

    assert "   * Limit\n   *\n   * Attempts allowed per window.\n   */\n  limit: number;" in declarations
    assert "  /** Shown when blocked. */\n  message?: string;" in declarations


def test_a_description_cannot_close_the_doc_comment_early() -> None:
    schema = {"type": "object", "properties": {"note": {"type": "string", "description": "a */ b"}}}

    assert "/** a *\\/ b */" in config_type_from_schema(schema)
    assert compile_action(VALID_SOURCE, schema).ok


@pytest.mark.parametrize("schema", [{}, {"type": "object"}, {"type": "object", "properties": {}}, {"type": "string"}])
def test_a_schema_without_properties_gives_an_open_config(schema: dict[str, Any]) -> None:
    assert config_type_from_schema(schema) == "{\n  [key: string]: unknown;\n}"


def test_the_declarations_match_the_program_model_of_the_contract() -> None:
    declarations = sdk_declarations({})
    for trigger in (
        "login.pre-credential-check",
        "login.post-auth",
        "login.pre-token",
        "login.post-login",
        "registration.pre-create",
        "registration.post-create",
        "password-reset.requested",
        "password-reset.completed",
        "token-refresh.pre-issue",
    ):
        assert f'  | "{trigger}"' in declarations
    # A complete input and every result kind type-check; a redirect without url does not.
    source = """\
const sample: ActionInput = {
  trigger: "login.post-auth",
  user: { id: "u1", email: "a@example.com", email_verified: true, groups: [], app_metadata: {} },
  request: { ip: "203.0.113.9", user_agent: "curl", hostname: "login.example.com" },
  state: {},
  secrets: {},
  context: {
    tenant: "acme", flow: "login", transaction_id: "t1", action: { slug: "a", version: "0.1.0" },
    config: {}, risk: { score: 12 },
  },
};
const results: ActionResult[] = [
  { kind: "continue", claims: { n: [1, "x", null, { deep: true }] }, state: { seen: 1 } },
  { kind: "block", reason: "no" },
  { kind: "demand_mfa" },
  { kind: "redirect", url: "https://example.com" },
];
const missingUrl: ActionResult = { kind: "redirect" };
const badTrigger: TriggerSlot = "login.pre-auth";
export async function execute(input: ActionInput): Promise<ActionResult> {
  console.log(sample, results, missingUrl, badTrigger, input.request.country, input.user.name);
  return results[0];
}
"""

    result = compile_action(source, {})

    assert _codes_by_line(result) == {18: {"TS2322"}, 19: {"TS2820"}}
    assert "Property 'url' is missing" in result.diagnostics[0].message


def test_sandbox_missing_globals_are_type_errors() -> None:
    missing_globals = ["fetch", "require", "process", "setTimeout", "document", "window", "XMLHttpRequest"]
    source = _action(*(f"console.log(typeof {name});" for name in missing_globals))

    result = compile_action(source, {})

    flagged_lines = {diagnostic.line for diagnostic in result.diagnostics}
    assert flagged_lines == set(range(2, 2 + len(missing_globals)))
    assert all(diagnostic.message.startswith("Cannot find name") for diagnostic in result.diagnostics)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(f"export async function run{EXECUTE_SIGNATURE} {CONTINUE_BODY}", id="other-name"),
        pytest.param(f"async function execute{EXECUTE_SIGNATURE} {CONTINUE_BODY}", id="not-exported"),
        pytest.param(f"export declare function execute{EXECUTE_SIGNATURE};", id="declared-only"),
        pytest.param("", id="empty"),
    ],
)
def test_a_module_without_an_exported_execute_is_action001(source: str) -> None:
    result = compile_action(source, {})

    assert [diagnostic.code for diagnostic in result.diagnostics] == ["ACTION001"]
    assert result.diagnostics[0].message == "The module must export an async function named execute."


def test_a_wrong_execute_signature_points_at_execute() -> None:
    source = "const unused = 1;\nexport function execute(x: number) {}\n"

    [diagnostic] = compile_action(source, {}).diagnostics

    assert (diagnostic.line, diagnostic.column, diagnostic.code) == (2, 17, "TS2322")
    assert diagnostic.message.startswith(
        "execute must have the signature (input: ActionInput) => Promise<ActionResult>: Type '(x: number) => void'"
    )


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(f'export const execute = async {EXECUTE_SIGNATURE} => ({{ kind: "continue" }});', id="arrow"),
        pytest.param(
            f"async function run{EXECUTE_SIGNATURE} {CONTINUE_BODY}\n"
            "export { run as execute };\n"
            "export const helper = 1;",
            id="renamed-with-helper",
        ),
    ],
)
def test_other_ways_of_exporting_execute_are_accepted(source: str) -> None:
    result = compile_action(source, {})

    assert result.ok, result.diagnostics
    assert "exports.execute = " in result.js


def test_a_source_over_100_kb_is_refused_before_compiling() -> None:
    # 2-byte characters: the limit counts UTF-8 bytes, not characters.
    source = VALID_SOURCE + "// " + "é" * (MAX_SOURCE_BYTES // 2)

    with pytest.raises(CompileLimitError, match=r"over the limit of 100 kB"):
        compile_action(source, {})


def test_reference_directives_are_refused_and_cannot_bring_in_the_dom() -> None:
    source = '/// <reference lib="dom" />\n' + _action('await fetch("https://example.com");')

    result = compile_action(source, {})

    assert [(d.line, d.column, d.code) for d in result.diagnostics] == [(1, 1, "ACTION002"), (3, 9, "TS2304")]


def test_imports_are_refused() -> None:
    source = 'import fs from "fs";\n  import { helper } from "./check";\n' + VALID_SOURCE

    result = compile_action(source, {})

    action004 = [(d.line, d.column) for d in result.diagnostics if d.code == "ACTION004"]
    assert action004 == [(1, 1), (2, 3)]


def test_columns_count_utf16_code_units_like_the_editor() -> None:
    source = _action('const emoji = "😀"; const n: number = emoji;')

    [diagnostic] = compile_action(source, {}).diagnostics

    # "  const emoji = "😀"; const " is 27 code points and 28 UTF-16 units; the error is on `n`.
    assert (diagnostic.line, diagnostic.column) == (2, 29)


def test_windows_line_endings_keep_line_numbers() -> None:
    source = _action("", "", "const n: number = input.user.email;").replace("\n", "\r\n")

    [diagnostic] = compile_action(source, {}).diagnostics

    assert (diagnostic.line, diagnostic.column) == (4, 9)


def test_a_compile_past_its_time_limit_is_stopped() -> None:
    result = compile_action(VALID_SOURCE, {}, timeout_s=0.001)

    [diagnostic] = result.diagnostics
    assert diagnostic.code == "ACTION003"
    assert diagnostic.message.startswith("Compilation took longer than 0.001 s")
    assert result.js == ""


def test_a_missing_compiler_says_to_run_npm_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tsc_module, "NODE_MODULES", tmp_path)
    monkeypatch.setattr(tsc_module, "TSC_LAUNCHER", tmp_path / ".bin" / "tsc")

    with pytest.raises(RuntimeError, match="npm ci"):
        compile_action(VALID_SOURCE, {})


def test_concurrent_compiles_each_get_their_own_result() -> None:
    sources = {
        "valid": VALID_SOURCE,
        "line-2": _action("const n: number = input.user.email;"),
        "line-3": _action("", "const b: boolean = input.request.ip;"),
        "config": _action("const s: string = input.context.config.limit;"),
    }
    schemas = {"valid": {}, "line-2": {}, "line-3": {}, "config": CONFIG_SCHEMA}

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(compile_action, source, schemas[name]) for name, source in sources.items()}
        results = {name: future.result() for name, future in futures.items()}

    assert results["valid"].ok
    assert [(d.line, d.code) for d in results["line-2"].diagnostics] == [(2, "TS2322")]
    assert [(d.line, d.code) for d in results["line-3"].diagnostics] == [(3, "TS2322")]
    assert [d.message for d in results["config"].diagnostics] == ["Type 'number' is not assignable to type 'string'."]
    assert "input.request.ip" in results["line-3"].js
    assert "input.context.config.limit" in results["config"].js


def test_it_parses_tsc_output_with_continuation_lines_and_file_less_messages() -> None:
    output = (
        "action.ts(3,9): error TS2322: Type '{ a: number; }' is not assignable to type '{ a: string; }'.\n"
        "  Types of property 'a' are incompatible.\n"
        "    Type 'number' is not assignable to type 'string'.\n"
        "error TS6053: File 'x.ts' not found.\n"
        "  The file is in the program because:\n"
    )

    first, second = parse_tsc_output(output)

    assert (first.file, first.line, first.column, first.code) == ("action.ts", 3, 9, "TS2322")
    assert first.text.splitlines() == [
        "Type '{ a: number; }' is not assignable to type '{ a: string; }'.",
        "  Types of property 'a' are incompatible.",
        "    Type 'number' is not assignable to type 'string'.",
    ]
    assert (second.file, second.code, second.text) == (
        None,
        "TS6053",
        "File 'x.ts' not found.\n  The file is in the program because:",
    )
