"""Secrets at run time (contract §11): code reads `input.secrets.NAME`, and every secret value is
replaced by `[secret NAME]` in whatever leaves the sandbox. Real actions in the real sandbox."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from actions_app.compiler import compile_action, sdk_declarations
from actions_app.harness import replay_comparison, run_in_harness
from actions_app.models import Action
from actions_app.runtime.redaction import MIN_SECRET_CHARS, redactor_for
from actions_app.sample_inputs import sample_input
from actions_app.secrets import delete_secret, set_secret
from actions_app.versioning import VersionDraft, publish_version, save_action_version
from audit_app.models import AuditEvent
from flows_app.models import ActionExecution
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.flow_helpers import SYSTEM, attach, custom_action, run

POST_AUTH = "login.post-auth"
PRE_TOKEN = "login.pre-token"  # the slot that may set claims
KEY = "sk_live_0123456789abcdef"
# Quotes, a backslash, non-ASCII and URL-reserved characters: its encodings differ from it.
ODD = 'pa"ss\\w/rd Ω&=?+1234'

# A base64 encoder written in the action: the sandbox has no btoa.
BASE64 = """
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function b64(text: string): string {
  const bytes = Array.from(text, (c) => c.charCodeAt(0));
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63];
    out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? ALPHABET[n & 63] : "=";
  }
  return out;
}
"""


def _with_secrets(
    tenant: Any, slug: str, body: str, *, head: str = "", trigger: str = POST_AUTH, **secrets: str
) -> Action:
    """A custom action whose published 0.1.1 runs `body` with `secrets` set: the first version
    cannot use them yet (a new action has no secrets, so `input.secrets.X` does not type-check)."""
    action = custom_action(tenant, slug, 'return { kind: "continue" };', [trigger])
    for name, value in secrets.items():
        set_secret(action, name, value, acting=SYSTEM)
    source = f"{head}\nexport async function execute(input: ActionInput): Promise<ActionResult> {{\n{body}\n}}\n"
    outcome = save_action_version(
        action, VersionDraft(source, {"type": "object", "properties": {}}, [trigger]), acting=SYSTEM
    )
    publish_version(outcome.version, acting=SYSTEM)
    attach(tenant, trigger, BindingSpec(slug, outcome.version.version, {}))
    return action


def _logs(result: Any) -> str:
    return "\n".join(entry["message"] for execution in result.executions for entry in execution.logs)


LOGGED_FORMS = [
    ("exact", "console.log('key=' + k);", "key=[secret CRM_KEY]"),
    ("split", "console.log(k.slice(0, 9)); console.log(k.slice(9));", "[secret CRM_KEY]"),
    ("json", "console.log(JSON.stringify({ k: o }));", '{"k":"[secret ODD]"}'),
    (
        "unicode-escaped json",
        r"const esc = (c: string) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');"
        r"console.log(JSON.stringify(o).replace(/[\u0080-\uffff]/g, esc));",
        '"[secret ODD]"',
    ),
    ("json twice", "console.log(JSON.stringify(JSON.stringify({ o })));", "[secret ODD]"),
    ("base64", "console.log('Basic ' + b64('jane:' + k));", "[secret CRM_KEY]"),
    ("base64 aligned", "console.log(b64(k));", "[secret CRM_KEY]"),
    (
        "base64url",
        "console.log(b64('x' + k).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, ''));",
        "[secret CRM_KEY]",
    ),
    ("percent-encoded", "console.log('q=' + encodeURIComponent(o));", "q=[secret ODD]"),
    ("encodeURI", "console.log(encodeURI(o));", "[secret ODD]"),
]


@pytest.mark.parametrize(("form", "code", "shown"), LOGGED_FORMS, ids=[form for form, _, _ in LOGGED_FORMS])
def test_a_secret_is_redacted_from_logs_in_each_form(personas: Any, form: str, code: str, shown: str) -> None:
    tenant = personas.tenant_a
    body = f"const k = input.secrets.CRM_KEY; const o = input.secrets.ODD;\n{code}\nreturn {{ kind: 'continue' }};"
    _with_secrets(tenant, "leaky", body, head=BASE64, CRM_KEY=KEY, ODD=ODD)
    result = run(tenant, POST_AUTH)
    assert result.executions[0].outcome == "continue", result.executions[0].error
    logs = _logs(result)
    assert shown in logs
    for leaked in (KEY, ODD, KEY[:12], KEY[12:], json.dumps(ODD)[1:-1], base64.b64encode(KEY.encode()).decode()):
        assert leaked not in logs


def test_a_reversed_secret_is_not_caught(personas: Any) -> None:
    # The documented limit: redaction is a net for accidents, not a guarantee against code that means to leak.
    tenant = personas.tenant_a
    body = "console.log(input.secrets.CRM_KEY.split('').reverse().join('')); return { kind: 'continue' };"
    _with_secrets(tenant, "reverser", body, CRM_KEY=KEY)
    assert KEY[::-1] in _logs(run(tenant, POST_AUTH))


def test_the_code_reads_its_secrets_and_results_are_redacted(personas: Any) -> None:
    tenant = personas.tenant_a
    body = """
    const k = input.secrets.CRM_KEY;
    console.log(Object.keys(input.secrets).join(","));
    return { kind: "continue", claims: { "https://example.com/crm": k, ["https://example.com/" + k]: 1 },
             state: { crm: { token: "Bearer " + k } } };"""
    _with_secrets(tenant, "claimer", body, trigger=PRE_TOKEN, CRM_KEY=KEY, SHORT="abc")
    result = run(tenant, PRE_TOKEN, transaction_id="tx-claims")
    assert _logs(result) == "CRM_KEY,SHORT"
    claims = result.outcome["claims"]
    assert claims["https://example.com/crm"] == "[secret CRM_KEY]"
    assert "https://example.com/[secret CRM_KEY]" in claims
    assert result.outcome["state"]["crm"]["token"] == "Bearer [secret CRM_KEY]"
    assert KEY not in json.dumps(result.outcome)


def test_block_reasons_redirect_urls_and_thrown_errors_are_redacted(personas: Any) -> None:
    tenant = personas.tenant_a
    body = 'return { kind: "block", reason: "bad key " + input.secrets.CRM_KEY };'
    _with_secrets(tenant, "blocker", body, CRM_KEY=KEY)
    assert run(tenant, POST_AUTH).outcome["reason"] == "bad key [secret CRM_KEY]"

    body = 'return { kind: "redirect", url: "https://crm.example.com/cb?k=" + encodeURIComponent(input.secrets.ODD) };'
    _with_secrets(tenant, "redirector", body, ODD=ODD)
    assert run(tenant, POST_AUTH).outcome["url"] == "https://crm.example.com/cb?k=[secret ODD]"

    body = "function helper(k: string): never { throw new Error(`CRM refused ${k}`); }\n"
    body += "return helper(input.secrets.CRM_KEY);"
    _with_secrets(tenant, "thrower", body, CRM_KEY=KEY)
    result = run(tenant, POST_AUTH)
    error = result.executions[0].error
    assert error is not None
    assert "CRM refused [secret CRM_KEY]" in error["message"]
    assert KEY not in error["message"]


def test_run_records_executions_and_audit_events_hold_no_secret(personas: Any) -> None:
    tenant = personas.tenant_a
    body = """
    console.log("calling with " + input.secrets.CRM_KEY);
    if (input.user.email.startsWith("x")) throw new Error("no " + input.secrets.CRM_KEY);
    return { kind: "continue", claims: { "https://example.com/k": input.secrets.CRM_KEY } };"""
    _with_secrets(tenant, "recorded", body, trigger=PRE_TOKEN, CRM_KEY=KEY)
    run(tenant, PRE_TOKEN, transaction_id="tx-rec")
    run(tenant, PRE_TOKEN, transaction_id="tx-rec-2", email="x@example.com")
    settle_tenant(tenant)
    rows = list(ActionExecution.objects.filter(action__slug="recorded").order_by("error_code"))
    assert [row.outcome for row in rows] == ["continue", "error"]
    for row in rows:
        stored = json.dumps([row.logs, row.result, row.error_message, row.masked_input])
        assert KEY not in stored
        assert "[secret CRM_KEY]" in stored
        assert "secrets" not in row.masked_input  # the record's input carries no secret, masked or not
    events = AuditEvent.objects.filter(type="flow.action_executed", action_slug="recorded")
    assert events.count() == 2
    assert all(KEY not in json.dumps([event.before, event.after], default=str) for event in events)


def test_the_harness_uses_the_real_secrets_unless_the_input_gives_test_values(personas: Any) -> None:
    tenant = personas.tenant_a
    body = 'console.log(input.secrets.CRM_KEY); return { kind: "block", reason: input.secrets.OTHER_KEY };'
    action = _with_secrets(tenant, "harnessed", body, CRM_KEY=KEY, OTHER_KEY="other-value-123")
    version = action.versions.get(version="0.1.1")
    edited = sample_input(POST_AUTH)

    def harness(given: dict[str, Any]) -> Any:
        raw = json.dumps({**edited, **given})
        return run_in_harness(
            tenant=tenant, action_slug=action.slug, raw_input=raw, config={}, config_schema={}, version=version
        )

    real = harness({}).execution
    assert real is not None and real.error is None
    assert real.logs[0]["message"] == "[secret CRM_KEY]"
    assert real.result == {"kind": "block", "reason": "[secret OTHER_KEY]"}

    tested = harness({"secrets": {"OTHER_KEY": "test-value-456"}}).execution
    assert tested is not None
    assert tested.logs[0]["message"] == "[secret CRM_KEY]"  # names not given keep the stored value
    assert tested.result == {"kind": "block", "reason": "[secret OTHER_KEY]"}  # test values are redacted too

    refused = harness({"secrets": {"OTHER_KEY": 5}})
    assert refused.execution is None and "secrets.OTHER_KEY" in refused.input_errors["input"][0]


def test_a_replay_compares_redacted_runs(personas: Any) -> None:
    tenant = personas.tenant_a
    body = 'console.log("k " + input.secrets.CRM_KEY); return { kind: "block", reason: input.secrets.CRM_KEY };'
    action = _with_secrets(tenant, "replayed", body, CRM_KEY=KEY)
    run(tenant, POST_AUTH, transaction_id="tx-replay")
    settle_tenant(tenant)
    recorded = ActionExecution.objects.get(action=action)
    harness_run = run_in_harness(
        tenant=tenant,
        action_slug=action.slug,
        raw_input=json.dumps(recorded.masked_input),
        config={},
        config_schema={},
        version=action.versions.get(version="0.1.1"),
    )
    comparison = replay_comparison(recorded, harness_run, "0.1.1")
    assert comparison.replayed is not None
    assert comparison.differences == []  # the same redacted result and logs on both sides
    assert comparison.replayed.result == {"kind": "block", "reason": "[secret CRM_KEY]"}
    assert KEY not in repr(comparison)


def test_a_changed_secret_reaches_the_next_run(personas: Any) -> None:
    tenant = personas.tenant_a
    body = 'return { kind: "block", reason: String(input.secrets.CRM_KEY?.length ?? "none") };'
    action = _with_secrets(tenant, "rotated", body, CRM_KEY=KEY)
    assert run(tenant, POST_AUTH).outcome["reason"] == str(len(KEY))
    set_secret(action, "CRM_KEY", KEY + "-rotated", acting=SYSTEM)
    assert run(tenant, POST_AUTH).outcome["reason"] == str(len(KEY) + 8)
    delete_secret(action, "CRM_KEY", acting=SYSTEM)
    assert run(tenant, POST_AUTH).outcome["reason"] == "none"


def test_secrets_are_the_actions_own(personas: Any) -> None:
    tenant = personas.tenant_a
    _with_secrets(tenant, "owner", 'return { kind: "continue" };', CRM_KEY=KEY)
    body = 'return { kind: "block", reason: JSON.stringify(input.secrets) };'
    _with_secrets(tenant, "neighbour", body)
    assert run(tenant, POST_AUTH).outcome["reason"] == "{}"


def test_the_sdk_types_the_actions_secret_names(personas: Any) -> None:
    assert "interface Secrets {}" in sdk_declarations({})
    declared = sdk_declarations({}, ["CRM_KEY", "API_TOKEN"])
    assert "interface Secrets {\n  readonly API_TOKEN: string;\n  readonly CRM_KEY: string;\n}" in declared
    source = (
        "export async function execute(input: ActionInput): Promise<ActionResult> {\n"
        '  return { kind: "block", reason: input.secrets.NOPE };\n}\n'
    )
    compiled = compile_action(source, {}, secret_names=["CRM_KEY"])
    assert any("NOPE" in diagnostic.message for diagnostic in compiled.diagnostics)
    assert compile_action(source.replace("NOPE", "CRM_KEY"), {}, secret_names=["CRM_KEY"]).ok


def test_the_editor_sdk_route_and_save_use_the_actions_names(personas: Any, client: Any) -> None:
    tenant = personas.tenant_a
    action = custom_action(tenant, "typed", 'return { kind: "continue" };', [POST_AUTH])
    set_secret(action, "CRM_KEY", KEY, acting=SYSTEM)
    client.force_login(personas.editor)
    url = f"/t/{tenant.slug}/actions/sdk-types/"
    typed = client.post(url, {"config_schema": "{}", "action": action.slug}).content.decode()
    assert "readonly CRM_KEY: string;" in typed
    assert "interface Secrets {}" in client.post(url, {"config_schema": "{}"}).content.decode()
    assert client.post(url, {"config_schema": "{}", "action": "nope"}).status_code == 404


def test_too_short_values_are_not_redacted() -> None:
    redactor = redactor_for({"PIN": "1" * (MIN_SECRET_CHARS - 1), "KEY": KEY})
    assert redactor.text(f"pin 11111 key {KEY}") == "pin 11111 key [secret KEY]"


def test_the_longest_secret_is_replaced_whole() -> None:
    redactor = redactor_for({"INNER": KEY, "OUTER": f"prefix-{KEY}-suffix"})
    assert redactor.text(f"a prefix-{KEY}-suffix b {KEY}") == "a [secret OUTER] b [secret INNER]"
