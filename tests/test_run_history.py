"""Run history: per-action runs and health, execution detail, flow runs, transaction trace, replay."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from actions_app.health import health_for, percentile
from actions_app.models import Action, ActionKind
from flows_app.models import ActionExecution
from flows_app.services import BindingSpec
from tests.flow_helpers import attach, custom_action, flow_of, run

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
    assert len(response.context["executions"]) == 3
    assert {e.transaction_id for e in response.context["executions"]} == {r.transaction_id for r in results}
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
    runs = response.context["runs"]
    assert [(r["transaction_id"], r["outcome"], r["executions"]) for r in runs] == [
        ("tx-b", "continue", 1),
        ("tx-a", "block", 2),
    ]


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
    assert f'<td class="num">{first.flow_revision}</td>' in response.content.decode()
    assert client.get("/t/acme/flows/login/transactions/no-such-tx/").status_code == 404
    client.force_login(personas.outsider)
    assert client.get(f"/t/acme/flows/login/transactions/{first.transaction_id}/").status_code == 404
