"""Config schema patterns: ECMA-262 meaning, linear time at every entry point, clear refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest

from actions_app.schema_forms import check_schema_supported
from actions_app.schema_forms.ecma_patterns import pattern_matches, pattern_problem
from actions_app.schema_forms.validation import validate_config
from tests.factories import bearer
from tests.flow_helpers import custom_action

# Exponential for a backtracking engine: Python's re would take hours on this value.
EVIL_PATTERN = "^(a+)+$"
EVIL_VALUE = "a" * 40 + "!"
# Generous: a linear engine answers in milliseconds; a backtracking one never does.
PROMPT_SECONDS = 3.0


def schema_with(pattern: str, **field: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern, **field}}}


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


# ---- ECMA-262 meaning, checked against Node's own RegExp ------------------------------------

PATTERNS = [
    r"^(a+)+$", r"^https://", r"^[a-z0-9-]+$", r"\.example\.com$", r"^\d{3}-\d{4}$", r"^\s*$", r"^\S+$",
    r"^.$", r"[\s\d]", r"[\S]", r"\bfoo\b", r"[\b]", r"\cJ", r"\x41", r"\u00e9", r"[\-a]", r"^(?:ab|cd)+$",
    r"^(?<year>\d{4})$", r"a*?b", r"^$", r"\0", r"[^a-z]", r"\/", r"x{2,3}?", r"^\w+$", r"[^\s]", r"^[^\n]*$",
    r"\uD83D\uDE00", r"^a|b$", r"^[]$", r"^[^]$", r"^\u{41}$", r"^\u{1F600}$", r"^\p{L}+$", r"^\p{Lu}",
    r"^\p{Letter}$", r"^\p{gc=Nd}+$", r"^\p{Script=Greek}+$", r"^\p{sc=Latin}+$", r"\P{L}", r"[\p{N}x]",
    r"^\p{LC}$", r"^\p{ASCII}+$", r"^\p{Any}$", r"[\u{1F600}-\u{1F64F}]", r"^[\x41-\x5A]+$", r"\\", r"\$",
    # Refused by Unicode mode, so refused here too (JavaScript without the u flag reads them otherwise).
    r"[]$]", r"[^]$]", r"a{,5}", r"{foo}", r"a]", r"[\d-z]", r"\-", r"\a", r"\p{Greek}", r"[\c1]",
    r"(?<a>x)(?<a>y)", r"[\p{L}-z]", r"[a-\p{L}]", r"\x4", r"\u12", r"\c", r"\k", r"\p{Nope}", r"\8",
]  # fmt: skip
TEXTS = [
    "", "a", "aaaa!", "]", "$]", "https://x", "x\n", "abc-1", "a.example.com", "a.example.com\n",
    "555-1234", "a{,5}", "{foo}", "a]", "  ", "\t\n", "\u00a0", "\ufeff", "\u2028", "\u2029", "\u180e", "x y",
    "\n", "\r", "é", "A", "-", "abcd", "cdab", "2024", "aab", "\0", "/", "xxx", "\b", "foo bar", "z", "😀",
    "b\n", "ß", "\x0b", "αβγ", "Ünïcödé", "٣", "ǅ", "\\", "$", "p{L}", "u" * 41, "😃",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed to compare with ECMA-262")
def test_patterns_mean_exactly_what_javascript_makes_of_them_with_the_u_flag() -> None:
    script = """
const [patterns, texts] = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(patterns.map((p) => {
  let re;
  try { re = new RegExp(p, "u"); } catch { return null; }
  return texts.map((t) => re.test(t));
})));
"""
    node = subprocess.run(
        ["node", "-e", script], input=json.dumps([PATTERNS, TEXTS]), capture_output=True, text=True, check=True
    )
    expected = json.loads(node.stdout)
    differences: list[tuple[Any, ...]] = []
    for pattern, matches in zip(PATTERNS, expected, strict=True):
        problem = pattern_problem(pattern)
        if matches is None or problem is not None:
            if (matches is None) != (problem is not None):
                differences.append((pattern, "JavaScript refuses it" if matches is None else problem))
            continue
        differences += [
            (pattern, text, m) for text, m in zip(TEXTS, matches, strict=True) if pattern_matches(pattern, text) != m
        ]
    assert differences == []


def test_unicode_property_escapes_read_as_json_schema_reads_them() -> None:
    assert pattern_matches(r"\p{Letter}cole", "l'école")
    assert pattern_matches(r"^\p{Lu}", "École") and not pattern_matches(r"^\p{Lu}", "école")
    assert pattern_matches(r"^\p{Script=Greek}+$", "αβγ")
    assert "not a property" in (pattern_problem(r"\p{NoSuchThing}") or "")
    assert "\\p{Script=Greek}" in (pattern_problem(r"\p{Greek}") or "")  # a script needs Script=, as with u
    assert "list the categories" in (pattern_problem(r"\p{C}") or "")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?=a)b", "Lookahead"),
        ("(?<!a)b", "lookbehind"),
        (r"(a)\1", "Backreferences"),
        (r"(?<x>a)\k<x>", "Backreferences"),
        ("((a{100}){100}){100}", "more than 1,000"),
        ("a{5000}", "more than 1,000"),
        ("a{3,2}", "out of order"),
        ("[z-a]", "out of order"),
        ("(a", "not closed"),
        ("a)", "no ("),
        ("[abc", "not closed"),
        ("*a", "Nothing to repeat"),
        ("a**", "Nothing to repeat"),
        ("a\\", "lone backslash"),
        ("(?i)a", "groups are supported"),
        ("\\ud800", "surrogate"),
        ("x" * 1001, "at most 1,000"),
    ],
)
def test_patterns_it_cannot_run_are_refused_with_the_reason(pattern: str, reason: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and reason in problem
    problems = check_schema_supported(schema_with(pattern))
    assert [p.path for p in problems] == ["/properties/code/pattern"]
    assert "The pattern at /properties/code/pattern cannot be used" in problems[0].message
    assert reason in problems[0].message


def test_ecma_syntax_python_would_refuse_is_accepted() -> None:
    # Python's re refuses (?<name>…); ECMA-262 and JSON Schema accept it.
    assert check_schema_supported(schema_with(r"^(?<year>\d{4})-(?<month>\d{2})$")) == []
    assert validate_config(schema_with(r"^(?<year>\d{4})$"), {"code": "2026"}) == {}


def test_classes_that_start_with_a_bracket_are_not_a_500() -> None:
    # `[]` matches nothing and `[^]` anything in ECMA-262; the old `$` rewrite misread `[]$]` (a 500).
    for pattern in ("[]$]", "[^]$]", "[]]", "[^]]"):
        [problem] = check_schema_supported(schema_with(pattern))
        assert "A lone ] must be escaped as \\]" in problem.message
    assert validate_config(schema_with("^[^]$"), {"code": "x"}) == {}
    assert validate_config(schema_with("^[]$"), {"code": "x"}) != {}
    assert validate_config(schema_with("^[\\]]$"), {"code": "]"}) == {}


def test_a_value_with_a_lone_surrogate_is_matched_not_a_crash() -> None:
    assert pattern_matches("a", "xa\ud800") and not pattern_matches("^b$", "\ud800")


# ---- Linear time wherever a pattern is checked ----------------------------------------------


def test_a_catastrophic_pattern_checks_a_config_at_once() -> None:
    errors, seconds = timed(lambda: validate_config(schema_with(EVIL_PATTERN), {"code": EVIL_VALUE}))
    assert seconds < PROMPT_SECONDS
    assert list(errors) == ["code"]


def test_a_catastrophic_default_is_refused_at_once_on_save(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:write")
    body = {
        "name": "Code check",
        "slug": "code-check",
        "compatible_triggers": ["login.post-auth"],
        "config_schema": schema_with(EVIL_PATTERN, default=EVIL_VALUE),
        "source": "export async function execute(input: ActionInput): Promise<ActionResult> {\n"
        '  return { kind: "continue" };\n}\n',
    }
    response, seconds = timed(
        lambda: client.post(
            "/api/v1/actions", data=json.dumps(body), content_type="application/json", headers=bearer(token)
        )
    )
    assert seconds < PROMPT_SECONDS
    assert response.status_code == 422
    assert "/properties/code" in json.dumps(response.json()["error"])


def test_the_schema_preview_answers_at_once(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    schema = schema_with(EVIL_PATTERN, default=EVIL_VALUE)
    response, seconds = timed(
        lambda: client.post("/t/acme/actions/schema-preview/", {"config_schema": json.dumps(schema)})
    )
    assert seconds < PROMPT_SECONDS
    assert response.status_code == 200 and "The default at /properties/code is not valid" in response.content.decode()
    lookahead = client.post("/t/acme/actions/schema-preview/", {"config_schema": json.dumps(schema_with("(?=a)"))})
    assert "The pattern at /properties/code/pattern cannot be used" in lookahead.content.decode()


def test_the_test_endpoint_and_a_slot_save_answer_at_once(client: Any, personas: Any, api_token: Any) -> None:
    schema = schema_with(EVIL_PATTERN)
    custom_action(personas.tenant_a, "code-check", 'return { kind: "continue" };', ["login.post-auth"], schema)
    token = api_token("runtime:execute", "flows:write")
    body = {
        "input": {"trigger": "login.post-auth", "user": {"id": "u", "email": "a@example.com", "groups": []}},
        "config": {"code": EVIL_VALUE},
    }
    response, seconds = timed(
        lambda: client.post(
            "/api/v1/actions/code-check/versions/0.1.0/test",
            data=json.dumps(body),
            content_type="application/json",
            headers=bearer(token),
        )
    )
    assert seconds < PROMPT_SECONDS and response.status_code == 422, response.content
    slot = {"bindings": [{"action": "code-check", "version": "0.1.0", "config": {"code": EVIL_VALUE}}]}
    response, seconds = timed(
        lambda: client.put(
            "/api/v1/flows/login/slots/login.post-auth",
            data=json.dumps(slot),
            content_type="application/json",
            headers={**bearer(token), "If-Match": "1"},
        )
    )
    assert seconds < PROMPT_SECONDS and response.status_code == 422, response.content
    assert "code" in json.dumps(response.json()["error"]["details"])


# ---- Linear is not free: program size and matching work have budgets ---------------------------

TEN_BRANCHES = "|".join(rf"\S{{1,999}}{letter}" for letter in "zyxwvutsrq")


def test_a_pattern_that_compiles_too_large_is_refused_with_advice() -> None:
    problem = pattern_problem(TEN_BRANCHES)
    assert problem is not None and "a config pattern may take 50,000" in problem and "maxLength" in problem
    problems, seconds = timed(lambda: check_schema_supported(schema_with(TEN_BRANCHES)))
    assert seconds < PROMPT_SECONDS and problems[0].path == "/properties/code/pattern"


def test_a_schema_s_patterns_together_have_a_budget() -> None:
    big = r"(.{1,900})z"  # about 20,000 steps: allowed alone
    assert pattern_problem(big) is None
    properties = {f"p{n}": {"type": "string", "pattern": f"{big}(?:q{n})?"} for n in range(8)}
    problems = check_schema_supported({"type": "object", "properties": properties})
    assert len(problems) == 1 and "together compile to more than 100,000 steps" in problems[0].message
    many = {f"p{n}": {"type": "string", "pattern": f"^a{n}$"} for n in range(201)}
    problems = check_schema_supported({"type": "object", "properties": many})
    assert len(problems) == 1 and "at most 200 patterns" in problems[0].message


def test_matching_a_long_value_against_a_costly_pattern_answers_at_once() -> None:
    schema = schema_with(r"(.{1,900})z")
    errors, seconds = timed(lambda: validate_config(schema, {"code": "😀" * 40_000}))
    assert seconds < 0.5
    assert errors == {"code": ["This value is too long to check against the setting's pattern; shorten it."]}
    # An ordinary value of an ordinary length is simply checked.
    assert validate_config(schema, {"code": "😀" * 100 + "z"}) == {}


def test_a_list_of_long_values_shares_one_matching_budget() -> None:
    schema = {
        "type": "object",
        "properties": {"codes": {"type": "array", "items": {"type": "string", "pattern": r"(.{1,400})z"}}},
    }
    errors, seconds = timed(lambda: validate_config(schema, {"codes": ["a" * 2000] * 500}))
    assert seconds < 0.5
    assert any("too long to check" in message for messages in errors.values() for message in messages)
