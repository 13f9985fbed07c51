"""Try it as a whole sign-in: every slot of the flow in order as one transaction, state carried
from slot to slot, ending where a slot blocks or redirects, each slot with its trace."""

from __future__ import annotations

from typing import Any

import pytest

from flows_app.models import ActionExecution
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.flow_helpers import attach, custom_action

TRY_URL = "/t/acme/flows/login/try/"
HTMX = {"HX-Request": "true", "HX-Target": "try-panel"}
PRE_CREDENTIAL = "login.pre-credential-check"
POST_AUTH = "login.post-auth"
PRE_TOKEN = "login.pre-token"
POST_LOGIN = "login.post-login"
ATTEMPT = {
    "try-scope": "sign_in",
    "try-trigger": POST_AUTH,
    "try-email": "jane@example.com",
    "try-groups": "staff",
    "try-ip": "203.0.113.9",
    "try-risk_score": "90",
    "try-transaction_id": "",
    "try-app_metadata": '{"plan": "pro"}',
}


@pytest.fixture
def editor_client(client: Any, personas: Any) -> Any:
    client.force_login(personas.editor)
    return client


@pytest.fixture
def remembering_flow(personas: Any) -> None:
    """pre-credential-check remembers the plan in the transaction's state; post-auth blocks on it."""
    tenant = personas.tenant_a
    custom_action(
        tenant,
        "remember-plan",
        'return { kind: "continue", state: { plan: String(input.user.app_metadata["plan"]) } };',
        [PRE_CREDENTIAL],
    )
    custom_action(
        tenant,
        "block-pro",
        'if (input.state["plan"] === "pro") return { kind: "block", reason: "plan from state: pro" };\n'
        'return { kind: "continue" };',
        [POST_AUTH],
    )
    attach(tenant, PRE_CREDENTIAL, BindingSpec("remember-plan", "0.1.0", timeout_ms=5000))
    attach(tenant, POST_AUTH, BindingSpec("block-pro", "0.1.0", timeout_ms=5000))
    claim = {"claim": "https://acme.example/plan", "from": "app_metadata.plan"}
    attach(tenant, PRE_TOKEN, BindingSpec("decorate-token", "1.0.0", claim))


def step_of(fragment: str, trigger: str) -> str:
    start = fragment.index(f'data-slot-run="{trigger}"')
    end = fragment.find("data-slot-run=", start + 1)
    return fragment[start : end if end != -1 else len(fragment)]


def test_it_runs_every_slot_in_order_carrying_state_and_stops_at_a_block(
    editor_client: Any, personas: Any, remembering_flow: None
) -> None:
    response = editor_client.post(TRY_URL, ATTEMPT, headers=HTMX)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "Sign-in outcome: block</strong> at <code>login.post-auth</code>" in fragment
    assert "plan from state: pro" in fragment  # post-auth read what pre-credential-check stored
    assert fragment.index(f'data-slot-run="{PRE_CREDENTIAL}"') < fragment.index(f'data-slot-run="{POST_AUTH}"')
    assert "<code>remember-plan</code>" in step_of(fragment, PRE_CREDENTIAL)
    assert "state after: <code>" in step_of(fragment, PRE_CREDENTIAL)
    assert "<code>block-pro</code>" in step_of(fragment, POST_AUTH)
    for later in (PRE_TOKEN, POST_LOGIN):
        assert "not reached" in step_of(fragment, later) and "<table" not in step_of(fragment, later)

    settle_tenant(personas.tenant_a)
    executions = list(ActionExecution.objects.order_by("occurred_at", "id"))
    assert [(e.trigger, e.outcome) for e in executions] == [(PRE_CREDENTIAL, "continue"), (POST_AUTH, "block")]
    assert len({e.transaction_id for e in executions}) == 1
    run = response.context["try_sign_in"]
    assert run.transaction_id == executions[0].transaction_id
    assert f'href="/t/acme/flows/login/transactions/{run.transaction_id}/"' in fragment


def test_a_sign_in_that_passes_every_slot_keeps_mfa_and_collects_claims(
    editor_client: Any, personas: Any, remembering_flow: None
) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("demand-mfa-by-risk-score", "1.0.0", {"threshold": 50}))
    attempt = {**ATTEMPT, "try-transaction_id": "try-sign-in-1"}
    response = editor_client.post(TRY_URL, attempt, headers=HTMX)
    assert response.status_code == 200
    fragment = response.content.decode()
    # MFA asked for at post-auth does not end the sign-in: the later slots still run.
    assert "Sign-in outcome: demand_mfa</strong>" in fragment and "not reached" not in fragment
    assert "No enabled action in this slot" in step_of(fragment, POST_LOGIN)
    run = response.context["try_sign_in"]
    assert run.outcome["claims"] == {"https://acme.example/plan": "pro"}
    assert run.outcome["state"] == {"plan": "pro"}
    settle_tenant(personas.tenant_a)
    assert set(ActionExecution.objects.values_list("transaction_id", flat=True)) == {"try-sign-in-1"}
    assert ActionExecution.objects.count() == 3


def test_one_trigger_at_a_time_still_runs_only_that_trigger(
    editor_client: Any, personas: Any, remembering_flow: None
) -> None:
    response = editor_client.post(TRY_URL, {**ATTEMPT, "try-scope": "trigger", "try-trigger": PRE_TOKEN}, headers=HTMX)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "Outcome: continue" in fragment and "Sign-in outcome" not in fragment
    assert response.context["try_run"].outcome["claims"] == {"https://acme.example/plan": "pro"}
    settle_tenant(personas.tenant_a)
    assert list(ActionExecution.objects.values_list("trigger", flat=True)) == [PRE_TOKEN]


def test_without_javascript_the_page_has_both_buttons_and_shows_the_sign_in(
    editor_client: Any, remembering_flow: None
) -> None:
    page = editor_client.get("/t/acme/flows/login/").content.decode()
    assert 'name="try-scope" value="sign_in"' in page and 'name="try-scope" value="trigger"' in page
    response = editor_client.post(TRY_URL, ATTEMPT)
    assert response.status_code == 200
    assert 'id="flow-editor"' in response.content.decode() and 'id="try-sign-in"' in response.content.decode()


def test_bad_input_names_the_field_and_runs_nothing(editor_client: Any, remembering_flow: None) -> None:
    refused = editor_client.post(TRY_URL, {**ATTEMPT, "try-scope": "everything"})
    assert refused.status_code == 422
    assert "Press “Run the whole sign-in” or “Run this trigger only”." in refused.content.decode()
    bad_ip = editor_client.post(TRY_URL, {**ATTEMPT, "try-ip": "nowhere"})
    assert bad_ip.status_code == 422 and "valid IPv4 or IPv6" in bad_ip.content.decode()
    assert not ActionExecution.objects.exists()


def test_viewers_cannot_run_it_and_other_tenants_get_404(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    assert client.post(TRY_URL, ATTEMPT).status_code == 403
    client.force_login(personas.outsider)
    assert client.post(TRY_URL, ATTEMPT).status_code == 404
