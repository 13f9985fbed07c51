"""Run history: per-action runs and health, execution detail, flow runs, transaction trace, replay."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from actions_app.models import Action, ActionKind
from actions_app.versioning import VersionDraft, save_action_version
from flows_app.action_health import health_for, percentile
from flows_app.models import ActionExecution
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of, run

POST_AUTH = "login.post-auth"
PRE_AUTH = "login.pre-credential-check"


def _execution(action: Action, *, outcome: str = "continue", duration: float = 1.0, **fields: Any) -> ActionExecution:
    values: dict[str, Any] = {
        "tenant": action.tenant,
        "flow": flow_of(action.tenant),
        "revision_number": 1,
        "transaction_id": "tx-1",
        "trigger": POST_AUTH,
        "binding_key": uuid.uuid4(),
        "action": action,
        "action_version": "0.1.0",
        "position": 0,
        "outcome": outcome,
        "duration_ms": duration,
        "masked_input": {"user": {"email": "jane@example.com"}, "context": {"config": {"api_key": "••••"}}},
    }
    return ActionExecution.objects.create(**(values | fields))


@pytest.fixture
def gate(personas: Any) -> Action:
    return custom_action(personas.tenant_a, "risk-gate", "return { kind: 'continue' };", [POST_AUTH, PRE_AUTH])


def test_it_computes_exact_health_for_a_known_set(gate: Action) -> None:
    now = timezone.now()
    outcomes = ["block", "block", "error"] + ["continue"] * 17
    for i, outcome in enumerate(outcomes):
        hours_ago = 5 if i < 4 else 0
        _execution(
            gate, outcome=outcome, duration=float(i + 1), occurred_at=now - timedelta(hours=hours_ago, minutes=1)
        )
    _execution(gate, outcome="block", duration=999.0, occurred_at=now - timedelta(hours=25))  # outside the window
    health = health_for([gate.pk], now=now, durations=True)[gate.pk]
    assert (health.runs, health.blocked, health.errors) == (20, 2, 1)
    assert (health.block_rate, health.error_rate) == (10.0, 5.0)
    assert (health.p50_ms, health.p95_ms) == (10.0, 19.0)
    assert sum(health.hourly) == 20 and len(health.hourly) == 24
    assert health.hourly[23] + health.hourly[22] == 16  # the last hour (minus a minute may cross an hour)
    assert health.hourly[18] + health.hourly[17] == 4


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_it_lists_an_actions_runs_from_the_real_engine(client: Any, personas: Any, gate: Action) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("risk-gate", "0.1.0"))
    results = [run(personas.tenant_a, POST_AUTH) for _ in range(3)]
    other = custom_action(personas.tenant_a, "other", "return { kind: 'continue' };", [POST_AUTH])
    _execution(other, transaction_id="not-mine")
    client.force_login(personas.viewer)
    response = client.get("/t/acme/actions/risk-gate/runs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert len(response.context["page"].rows) == 3
    assert {e.transaction_id for e in response.context["page"].rows} == {r.transaction_id for r in results}
    assert "not-mine" not in page
    assert response.context["health"].runs == 3
    assert "outcome-continue" in page and "<svg" in page


def test_it_shows_an_execution_with_its_masked_input(client: Any, personas: Any, gate: Action) -> None:
    execution = _execution(gate, outcome="error", error_code="timeout", error_message="took too long")
    client.force_login(personas.viewer)
    response = client.get(f"/t/acme/actions/risk-gate/runs/{execution.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "jane@example.com" in page and "••••" in page and "took too long" in page
    assert "/t/acme/flows/login/transactions/tx-1/" in page
    assert f"?replay={execution.pk}" in page


def test_it_answers_404_for_an_execution_of_another_action_or_tenant(client: Any, personas: Any, gate: Action) -> None:
    theirs = custom_action(personas.tenant_b, "risk-gate", "return { kind: 'continue' };", [POST_AUTH])
    foreign = _execution(theirs)
    other = custom_action(personas.tenant_a, "other", "return { kind: 'continue' };", [POST_AUTH])
    mine_other = _execution(other)
    client.force_login(personas.owner)
    assert client.get(f"/t/acme/actions/risk-gate/runs/{foreign.pk}/").status_code == 404
    assert client.get(f"/t/acme/actions/risk-gate/runs/{mine_other.pk}/").status_code == 404
    client.force_login(personas.outsider)
    assert client.get("/t/acme/actions/risk-gate/runs/").status_code == 404


def test_the_action_page_links_to_runs_and_loads_health(client: Any, personas: Any, gate: Action) -> None:
    _execution(gate, outcome="block")
    client.force_login(personas.viewer)
    page = client.get("/t/acme/actions/risk-gate/").content.decode()
    assert "/t/acme/actions/risk-gate/runs/" in page and 'id="action-health"' in page
    partial = client.get(
        "/t/acme/actions/risk-gate/runs/", headers={"HX-Request": "true", "HX-Target": "action-health"}
    )
    body = partial.content.decode()
    assert "Block rate" in body and "100.0%" in body and "<html" not in body
    template_action = Action.objects.filter(tenant=personas.tenant_a, kind=ActionKind.TEMPLATE).first()
    assert template_action is not None
    template_page = client.get(f"/t/acme/actions/{template_action.slug}/").content.decode()
    assert f"/t/acme/actions/{template_action.slug}/runs/" in template_page


def test_the_list_shows_health_columns(client: Any, personas: Any, gate: Action) -> None:
    _execution(gate, outcome="block")
    _execution(gate, outcome="error")
    client.force_login(personas.viewer)
    page = client.get("/t/acme/actions/", {"q": "risk-gate"}).content.decode()
    assert "Runs 24 h" in page and "50.0%" in page and 'class="sparkline"' in page


def test_replay_prefills_the_harness_with_the_recorded_input(client: Any, personas: Any, gate: Action) -> None:
    execution = _execution(gate, trigger=PRE_AUTH)
    client.force_login(personas.editor)
    response = client.get(f"/t/acme/actions/risk-gate/?replay={execution.pk}")
    assert response.status_code == 200
    assert '"email": "jane@example.com"' in response.context["harness_input"]
    assert "••••" in response.context["harness_input"]
    assert response.context["harness_trigger"] == PRE_AUTH
    assert "Replaying execution" in response.content.decode()
    assert "jane@example.com" in response.content.decode()


def test_replay_ignores_an_execution_of_another_tenant(client: Any, personas: Any, gate: Action) -> None:
    theirs = custom_action(personas.tenant_b, "risk-gate", "return { kind: 'continue' };", [POST_AUTH])
    foreign = _execution(theirs, masked_input={"user": {"email": "globex-secret@example.com"}})
    client.force_login(personas.owner)
    response = client.get(f"/t/acme/actions/risk-gate/?replay={foreign.pk}")
    assert "globex-secret" not in response.content.decode()


def test_flow_runs_group_by_transaction_and_trigger(client: Any, personas: Any, gate: Action) -> None:
    now = timezone.now()
    _execution(gate, transaction_id="tx-a", outcome="continue", occurred_at=now - timedelta(minutes=3))
    _execution(gate, transaction_id="tx-a", outcome="block", position=1, occurred_at=now - timedelta(minutes=3))
    _execution(gate, transaction_id="tx-b", outcome="continue", occurred_at=now - timedelta(minutes=1))
    client.force_login(personas.viewer)
    response = client.get("/t/acme/flows/login/runs/")
    runs = response.context["page"].rows
    assert [(r["transaction_id"], r["outcome"], r["executions"]) for r in runs] == [
        ("tx-b", "continue", 1),
        ("tx-a", "block", 2),
    ]
    html = response.content.decode()
    assert 'href="/t/acme/flows/login/transactions/tx-a/"' in html
    assert 'href="/t/acme/audit/?type=flow.action_executed&amp;flow=login"' in html  # older runs
    # The flow editor leads here too.
    assert 'href="/t/acme/flows/login/runs/"' in client.get("/t/acme/flows/login/").content.decode()


def test_transaction_trace_is_in_order_across_triggers(client: Any, personas: Any, gate: Action) -> None:
    attach(personas.tenant_a, PRE_AUTH, BindingSpec("risk-gate", "0.1.0"))
    attach(personas.tenant_a, POST_AUTH, BindingSpec("risk-gate", "0.1.0"), BindingSpec("risk-gate", "0.1.0"))
    first = run(personas.tenant_a, PRE_AUTH)
    # A later revision does not change a running transaction: it stays on the revision it began with.
    attach(personas.tenant_a, POST_AUTH, BindingSpec("risk-gate", "0.1.0"))
    second = run(personas.tenant_a, POST_AUTH, transaction_id=first.transaction_id)
    assert second.flow_revision == first.flow_revision
    client.force_login(personas.viewer)
    response = client.get(f"/t/acme/flows/login/transactions/{first.transaction_id}/")
    assert response.status_code == 200
    executions = response.context["executions"]
    assert [(e.trigger, e.position) for e in executions] == [(PRE_AUTH, 0), (POST_AUTH, 0), (POST_AUTH, 1)]
    assert {e.revision_number for e in executions} == {first.flow_revision}
    html = response.content.decode()
    assert f'<td class="num"><code>r{first.flow_revision}</code></td>' in html
    assert '<td class="num">#1</td>' in html and '<td class="num">#2</td>' in html  # as the editor numbers them
    assert client.get("/t/acme/flows/login/transactions/no-such-tx/").status_code == 404
    client.force_login(personas.outsider)
    assert client.get(f"/t/acme/flows/login/transactions/{first.transaction_id}/").status_code == 404


# --- Replay: the recorded execution beside a harness run of its input ---

HTMX_HARNESS = {"HX-Request": "true", "HX-Target": "harness"}
BLOCKING = """export async function execute(input: ActionInput): Promise<ActionResult> {
  console.log("checking", input.user.email);
  return { kind: "block", reason: "replayed and refused" };
}
"""


def _recorded_run(personas: Any) -> ActionExecution:
    """A real execution of risk-gate 0.1.0 (continue), recorded by the engine."""
    attach(personas.tenant_a, POST_AUTH, BindingSpec("risk-gate", "0.1.0"))
    result = run(personas.tenant_a, POST_AUTH, email="replay@example.com")
    settle_tenant(personas.tenant_a)
    return ActionExecution.objects.get(transaction_id=result.transaction_id)


def _replay_post(execution: ActionExecution, target: str, **overrides: str) -> dict[str, Any]:
    """What the harness form posts after "Replay" prefilled it and the operator picked `target`."""
    return {
        "source": "",
        "compatible_triggers": [POST_AUTH],
        "config_schema": json.dumps({"type": "object", "properties": {}}),
        "harness_target": target,
        "harness_trigger": execution.trigger,
        "harness_input": json.dumps(execution.masked_input),
        "replay": str(execution.pk),
        **overrides,
    }


def _column(html: str, column_id: str) -> str:
    start = html.index(f'id="{column_id}"')
    return html[start : html.index("</dl>", start)]


def test_replay_runs_another_version_beside_the_recorded_result(client: Any, personas: Any, gate: Action) -> None:
    recorded = _recorded_run(personas)
    save_action_version(
        gate, VersionDraft(BLOCKING, {"type": "object", "properties": {}}, [POST_AUTH]), acting=SYSTEM
    )  # 0.1.1, a draft
    client.force_login(personas.editor)
    opened = client.get(f"/t/acme/actions/risk-gate/?replay={recorded.pk}").content.decode()
    assert f'name="replay" value="{recorded.pk}"' in opened and "Press Run" in opened

    response = client.post("/t/acme/actions/risk-gate/test/", _replay_post(recorded, "0.1.1"), headers=HTMX_HARNESS)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="harness"')
    left, right = _column(html, "replay-recorded"), _column(html, "replay-new")
    assert "Recorded: version 0.1.0" in left and ">continue</span>" in left
    assert "This run: version 0.1.1" in right and ">block</span>" in right
    assert "replayed and refused" in right and "checking replay@example.com" in right
    # The difference is written out, and both columns flag the row, in words and not colour alone.
    assert "Outcome changed: continue → block" in html and "Console output changed" in html
    assert left.count("changed-flag") == right.count("changed-flag") >= 2
    # The new run can be repeated: the replay id stays in the swapped region.
    assert f'name="replay" value="{recorded.pk}"' in html


def test_replay_says_when_an_error_disappeared(client: Any, personas: Any, gate: Action) -> None:
    failed = _execution(
        gate,
        outcome="error",
        error_code="timeout",
        error_message="took longer than 1000 ms",
        masked_input={"trigger": POST_AUTH, "user": {"id": "u1", "email": "jane@example.com"}},
    )
    client.force_login(personas.editor)
    html = client.post(
        "/t/acme/actions/risk-gate/test/", _replay_post(failed, "0.1.0"), headers=HTMX_HARNESS
    ).content.decode()
    assert "Error gone: the recorded run failed with timeout" in html
    assert "Outcome changed: error → continue" in html
    assert "took longer than 1000 ms" in _column(html, "replay-recorded")
    assert ">none<" in _column(html, "replay-new").split("Result")[0]  # no error on the new run


def test_replay_of_the_same_version_reports_no_difference(client: Any, personas: Any, gate: Action) -> None:
    recorded = _recorded_run(personas)
    client.force_login(personas.editor)
    html = client.post(
        "/t/acme/actions/risk-gate/test/", _replay_post(recorded, "0.1.0"), headers=HTMX_HARNESS
    ).content.decode()
    assert "Same outcome, result and console output as the recorded run." in html
    assert "changed-flag" not in html


def test_replay_runs_the_unsaved_draft_from_the_editor(client: Any, personas: Any, gate: Action) -> None:
    recorded = _recorded_run(personas)
    client.force_login(personas.editor)
    data = _replay_post(recorded, "draft", source=BLOCKING)
    html = client.post("/t/acme/actions/risk-gate/test/", data, headers=HTMX_HARNESS).content.decode()
    assert "This run: the unsaved draft" in html and "Outcome changed: continue → block" in html


def test_replay_ignores_an_execution_the_operator_cannot_see(client: Any, personas: Any, gate: Action) -> None:
    theirs = custom_action(personas.tenant_b, "risk-gate", "return { kind: 'continue' };", [POST_AUTH])
    foreign = _execution(theirs, outcome="block", masked_input={"user": {"email": "globex-secret@example.com"}})
    client.force_login(personas.owner)
    typed = json.dumps({"trigger": POST_AUTH, "user": {"id": "u1", "email": "jane@example.com"}})
    data = _replay_post(foreign, "0.1.0", harness_input=typed)
    html = client.post("/t/acme/actions/risk-gate/test/", data, headers=HTMX_HARNESS).content.decode()
    assert 'id="replay"' not in html and "globex-secret" not in html
    # Without a replay the harness shows its ordinary result.
    assert "<strong>Result</strong>" in html
