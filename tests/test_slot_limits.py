"""A slot's limits (actions per slot, summed timeouts) and a strict risk score, with clear errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flows_app.services import MAX_BINDINGS_PER_SLOT, BindingSpec, InvalidBindings, save_flow_slots
from tests.editor_form import form_values
from tests.factories import bearer
from tests.flow_helpers import SYSTEM, attach, flow_of

POST_AUTH = "login.post-auth"
URL = "/t/acme/flows/login/"


def risk_binding(timeout_ms: int = 1000, *, enabled: bool = True) -> dict[str, Any]:
    return {
        "action": "block-by-risk-score",
        "version": "1.0.0",
        "config": {"threshold": 90},
        "timeout_ms": timeout_ms,
        "enabled": enabled,
    }


def put_slot(client: Any, token: str, bindings: list[dict[str, Any]]) -> Any:
    return client.put(
        f"/api/v1/flows/login/slots/{POST_AUTH}",
        data=json.dumps({"bindings": bindings}),
        content_type="application/json",
        headers={**bearer(token), "If-Match": "1"},
    )


def test_a_slot_holds_at_most_twenty_actions(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("flows:write")
    response = put_slot(client, token, [risk_binding(50)] * (MAX_BINDINGS_PER_SLOT + 1))
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == POST_AUTH and "at most 20 actions; this one has 21" in detail["message"]
    assert put_slot(client, token, [risk_binding(50)] * MAX_BINDINGS_PER_SLOT).status_code == 200


def test_the_enabled_timeouts_of_a_slot_add_up_to_ten_seconds_at_most(
    client: Any, personas: Any, api_token: Any
) -> None:
    token = api_token("flows:write")
    response = put_slot(client, token, [risk_binding(5000), risk_binding(5000), risk_binding(50)])
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == POST_AUTH and "add up to 10,050 ms" in detail["message"]
    # A disabled action does not run, so its timeout does not count.
    bindings = [risk_binding(5000), risk_binding(5000), risk_binding(5000, enabled=False)]
    assert put_slot(client, token, bindings).status_code == 200


def test_the_flow_editor_shows_the_budget_and_refuses_going_over_it(client: Any, personas: Any) -> None:
    attach(
        personas.tenant_a,
        POST_AUTH,
        BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 90}, timeout_ms=4000),
        BindingSpec("demand-mfa-by-risk-score", "1.0.0", {"threshold": 50}, timeout_ms=3000),
        BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 95}, timeout_ms=1000),
    )
    client.force_login(personas.editor)
    html = client.get(URL).content.decode()
    assert "3 of 20 actions · timeouts of enabled actions 8,000 of 10,000 ms" in html

    data: dict[str, Any] = form_values(html)
    timeout_fields = [name for name in data if name.endswith("-timeout_ms") and data[name] == ["1000"]]
    assert len(timeout_fields) == 1
    data.update({timeout_fields[0]: "3001", "op": "save"})
    page = client.post(URL, data)
    assert page.status_code == 422
    text = page.content.decode()
    assert "add up to 10,001 ms; a slot may hold a sign-in for at most 10,000 ms" in text
    assert 'value="3001"' in text  # what was typed is kept
    assert flow_of(personas.tenant_a).current_revision.number == 2  # type: ignore[union-attr]


def test_the_service_refuses_before_saving_anything(personas: Any) -> None:
    flow = flow_of(personas.tenant_a)
    specs = [BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 90}, timeout_ms=50)] * 21
    with pytest.raises(InvalidBindings) as refused:
        save_flow_slots(flow, {POST_AUTH: specs}, expected_revision=1, acting=SYSTEM)
    assert list(refused.value.errors) == [POST_AUTH]
    assert flow_of(personas.tenant_a).current_revision.number == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("score", [True, "90", None, [], {}, 100.5, -1])
def test_the_risk_score_must_be_a_number_from_0_to_100(client: Any, personas: Any, api_token: Any, score: Any) -> None:
    token = api_token("runtime:execute")
    body = {
        "trigger": POST_AUTH,
        "user": {"id": "u1", "email": "jane@example.com"},
        "request": {"ip": "203.0.113.9"},
        "context": {"risk": {"score": score}},
    }
    response = client.post(
        "/api/v1/flows/login/run", data=json.dumps(body), content_type="application/json", headers=bearer(token)
    )
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"][0]["field"] == "context.risk.score"
    body["context"] = {"risk": {"score": 90}}
    ok = client.post(
        "/api/v1/flows/login/run", data=json.dumps(body), content_type="application/json", headers=bearer(token)
    )
    assert ok.status_code == 200
