"""GET /api/v1/flows/{slug}/executions: a flow's executions filtered as on the run pages, paged by
keyset cursors; every bad filter answers 400 naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actions_app.models import Action
from tests.factories import bearer, error_fields, execution_rows
from tests.flow_helpers import custom_action, flow_of

URL = "/api/v1/flows/login/executions"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def gate(personas: Any) -> Action:
    return custom_action(personas.tenant_a, "risk-gate", "return { kind: 'continue' };", ["login.post-auth"])


@pytest.fixture
def reader(api_token: Any) -> dict[str, str]:
    return bearer(api_token("flows:read"))


def test_it_lists_filters_and_pages_a_flows_executions(client: Any, personas: Any, gate: Action, reader: Any) -> None:
    flow = flow_of(personas.tenant_a)
    execution_rows(gate, flow, 130, START)
    execution_rows(gate, flow, 3, START + timedelta(hours=1), outcome="block", transaction_id="blocked", position=1)
    first = client.get(URL, {"limit": 60}, headers=reader).json()
    assert [i["transaction_id"] for i in first["items"][:4]] == ["blocked"] * 3 + ["tx-00129"]
    assert first["items"][0] | {"id": 0, "occurred_at": ""} == {
        "id": 0,
        "occurred_at": "",
        "transaction_id": "blocked",
        "revision": 1,
        "trigger": "login.post-auth",
        "position": 2,
        "action": "risk-gate",
        "version": "0.1.0",
        "outcome": "block",
        "duration_ms": 1.0,
        "error": None,
        "on_error_applied": None,
    }
    # New runs do not shift the next page.
    execution_rows(gate, flow, 5, START + timedelta(days=1), transaction_id="late")
    second = client.get(URL, {"limit": 60, "cursor": first["next"]}, headers=reader).json()
    assert [i["transaction_id"] for i in second["items"]] == [f"tx-{n:05d}" for n in range(72, 12, -1)]
    third = client.get(URL, {"limit": 60, "cursor": second["next"]}, headers=reader).json()
    assert len(third["items"]) == 13 and third["next"] is None
    blocked = client.get(URL, {"outcome": "block", "action": "risk-gate", "version": "0.1.0"}, headers=reader)
    assert {i["transaction_id"] for i in blocked.json()["items"]} == {"blocked"}
    window = {"since": "2026-12-01T09:00:05", "until": "2026-12-01T09:00:06Z", "trigger": "login.post-auth"}
    assert [i["transaction_id"] for i in client.get(URL, window, headers=reader).json()["items"]] == [
        "tx-00006",
        "tx-00005",
    ]
    assert client.get(URL, {"revision": "2"}, headers=reader).json() == {"items": [], "next": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"outcome": "blocked"}, "outcome"),
        ({"version": "0.1.0"}, "version"),
        ({"action": "no-such-action"}, "action"),
        ({"action": "risk-gate", "version": "9.9.9"}, "version"),
        ({"trigger": "registration.pre-create"}, "trigger"),
        ({"revision": "r"}, "revision"),
        ({"revision": "123456789012345678901234567890"}, "revision"),
        ({"since": "yesterday"}, "since"),
        ({"since": "9999-12-31T23:59-14:00"}, "since"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "until"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "WyJmbG93cyIsImxvZ2luIl0"}, "cursor"),  # the flows list's cursor
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_filter_answers_400_naming_it(
    client: Any, personas: Any, gate: Action, reader: Any, params: dict[str, str], field: str
) -> None:
    execution_rows(gate, flow_of(personas.tenant_a), 2, START)
    response = client.get(URL, params, headers=reader)
    assert response.status_code == 400, response.content
    assert field in error_fields(response)


def test_it_is_scoped_and_tenanted(client: Any, personas: Any, gate: Action, api_token: Any) -> None:
    execution_rows(gate, flow_of(personas.tenant_a), 2, START)
    assert client.get(URL, headers=bearer(api_token("audit:read"))).status_code == 403
    globex = bearer(api_token("flows:read", tenant=personas.tenant_b))
    assert client.get(URL, headers=globex).json() == {"items": [], "next": None}  # globex's own login flow
    assert client.get("/api/v1/flows/no-such-flow/executions", headers=globex).status_code == 404
