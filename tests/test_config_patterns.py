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
from tests.flow_helpers import custom_action

# Exponential for a backtracking engine: Python's re would take hours on this value.
EVIL_PATTERN = "^(a+)+$"
EVIL_VALUE = "a" * 40 + "!"
# Generous: a linear engine answers in milliseconds; a backtracking one never does.
PROMPT_SECONDS = 3.0


def schema_with(pattern: str, **field: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern, **field}}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


# ---- ECMA-262 meaning, checked against Node's own RegExp ------------------------------------

PATTERNS = [
    r"^(a+)+$", r"[]$]", r"[^]$]", r"^https://", r"^[a-z0-9-]+$", r"\.example\.com$", r"^\d{3}-\d{4}$",
    r"a{,5}", r"{foo}", r"a]", r"^\s*$", r"^\S+$", r"^.$", r"[\s\d]", r"[\S]", r"[\d-z]", r"\bfoo\b",
    r"[\b]", r"\cJ", r"\x41", r"\u00e9", r"\-", r"[\-a]", r"^(?:ab|cd)+$", r"^(?<year>\d{4})$", r"a*?b",
    r"^$", r"\0", r"[^a-z]", r"\/", r"x{2,3}?", r"^\w+$", r"[^\s]", r"^[^\n]*$", r"\uD83D\uDE00", r"^a|b$",
]  # fmt: skip
TEXTS = [
    "", "a", "aaaa!", "]", "$]", "https://x", "x\n", "abc-1", "a.example.com", "a.example.com\n",
    "555-1234", "a{,5}", "{foo}", "a]", "  ", "\t\n", "\u00a0", "\ufeff", "\u2028", "\u2029", "\u180e", "x y",
    "\n", "\r", "é", "A", "-", "abcd", "cdab", "2024", "aab", "\0", "/", "xxx", "\b", "foo bar", "z", "😀",
    "b\n", "ß", "\x0b",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed to compare with ECMA-262")
def test_patterns_match_exactly_what_javascript_matches() -> None:
    script = """
const [patterns, texts] = JSON.parse(require("fs").readFileSync(0, "utf8"));
// With the u flag (code points, as JSON Schema asks) where the pattern allows it, else Annex B.
const compile = (p) => { try { return new RegExp(p, "u"); } catch { return new RegExp(p); } };
console.log(JSON.stringify(patterns.map((p) => texts.map((t) => compile(p).test(t)))));
"""
    node = subprocess.run(
        ["node", "-e", script], input=json.dumps([PATTERNS, TEXTS]), capture_output=True, text=True, check=True
    )
    expected = json.loads(node.stdout)
    differences = [
        (pattern, text, expected[p][t])
        for p, pattern in enumerate(PATTERNS)
        for t, text in enumerate(TEXTS)
        if pattern_matches(pattern, text) != expected[p][t]
    ]
    assert differences == []


def test_unicode_property_escapes_read_as_json_schema_reads_them() -> None:
    assert pattern_matches(r"\p{Letter}cole", "l'école")
    assert pattern_matches(r"^\p{Lu}", "École") and not pattern_matches(r"^\p{Lu}", "école")
    assert pattern_matches(r"^\p{Script=Greek}+$", "αβγ")
    assert "no Unicode property" in (pattern_problem(r"\p{NoSuchThing}") or "")


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
    # `[]` matches nothing and `[^]` anything in ECMA-262; the old `$` rewrite misread both.
    for pattern in ("[]$]", "[^]$]", "[]]", "[^]]"):
        assert check_schema_supported(schema_with(pattern)) == []
        errors = validate_config(schema_with(pattern), {"code": "x]"})
        assert isinstance(errors, dict)
    assert validate_config(schema_with("^[^]]$"), {"code": "x]"}) == {}
    assert validate_config(schema_with("^[]]$"), {"code": "]"}) != {}


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
