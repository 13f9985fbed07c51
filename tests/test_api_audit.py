"""GET /api/v1/audit (contract §9)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction

from audit_app.models import AuditEvent
from audit_app.services import record
from tests.factories import ALICE, T0, add_events, build_story

URL = "/api/v1/audit"


@pytest.fixture
def story(personas: Any) -> dict[str, AuditEvent]:
    return build_story(personas)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_it_needs_the_audit_read_scope(client: Any, personas: Any, api_token: Any) -> None:
    assert client.get(URL).status_code == 401
    response = client.get(URL, headers=bearer(api_token("actions:read", "flows:read")))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "missing_scope"
    assert "audit:read" in error["message"]
    assert error["details"] == {"required_scope": "audit:read"}


def test_it_answers_the_contracts_shape(client: Any, personas: Any, api_token: Any, story: Any) -> None:
    response = client.get(URL, {"type": "flow.action_updated"}, headers=bearer(api_token("audit:read")))
    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "id": story["updated"].pk,
                "occurred_at": "2025-03-01T12:01:00Z",
                "type": "flow.action_updated",
                "actor": {"kind": "user", "id": "41", "name": "alice"},
                "subject": {
                    "action": "geo-block",
                    "version": None,
                    "flow": "login",
                    "revision": 7,
                    "trigger": "login.post-auth",
                    "target": None,
                },
                "before": {"config": {"countries": ["FR"], "api_key": "••••"}, "enabled": True},
                "after": {"config": {"countries": ["FR", "DE"], "api_key": "••••"}, "order": 2},
                "request": {"ip": "203.0.113.9", "user_agent": "curl/8", "request_id": "req-abc123"},
                "transaction_id": None,
            }
        ],
        "next": None,
    }


def test_it_filters_like_the_page(client: Any, personas: Any, api_token: Any, story: Any) -> None:
    token = api_token("audit:read")

    def ids(params: dict[str, Any]) -> list[int]:
        response = client.get(URL, params, headers=bearer(token))
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["items"]]

    # (the token's own api_token.created event is newer than the story)
    assert ids({"type": ["flow.action_executed", "api_token.created"], "until": "2025-03-02T00:00Z"}) == [
        story[n].pk for n in ("token", "continued", "blocked")
    ]
    assert ids({"action": "geo-block", "flow": "signup"}) == [story["continued"].pk]
    assert ids({"actor": "deploy bot"}) == [story["token"].pk]
    assert ids({"since": "2025-03-01T12:03:00Z", "until": "2025-03-01T13:03:30+01:00"}) == [story["continued"].pk]
    assert ids({"outcome": "block"}) == [story["blocked"].pk]


def test_it_sees_only_its_tenant(client: Any, personas: Any, api_token: Any, story: Any) -> None:
    response = client.get(URL, headers=bearer(api_token("audit:read", tenant=personas.tenant_b)))
    items = response.json()["items"]
    assert items
    assert not {i["id"] for i in items} & {e.pk for e in story.values()}


def test_the_cursor_walks_newest_first_and_is_stable(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("audit:read")
    events = add_events(personas.tenant_a, 25, event_type="action.created")
    newest_first = [e.pk for e in reversed(events)]
    first = client.get(URL, {"type": "action.created", "limit": 10}, headers=bearer(token)).json()
    assert [i["id"] for i in first["items"]] == newest_first[:10]
    with transaction.atomic():
        record(tenant=personas.tenant_a, event_type="action.created", actor=ALICE, occurred_at=T0 + timedelta(days=1))
    second = client.get(URL, {"type": "action.created", "limit": 10, "cursor": first["next"]}, headers=bearer(token))
    second_json = second.json()
    assert [i["id"] for i in second_json["items"]] == newest_first[10:20]
    third = client.get(
        URL, {"type": "action.created", "limit": 10, "cursor": second_json["next"]}, headers=bearer(token)
    ).json()
    assert [i["id"] for i in third["items"]] == newest_first[20:]
    assert third["next"] is None


def test_limit_defaults_to_100_and_is_capped_at_500(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("audit:read")
    add_events(personas.tenant_a, 520)
    default = client.get(URL, {"type": "action.version_saved"}, headers=bearer(token)).json()
    assert len(default["items"]) == 100
    assert default["next"]
    capped = client.get(URL, {"type": "action.version_saved", "limit": 5000}, headers=bearer(token)).json()
    assert len(capped["items"]) == 500


def test_bad_input_is_a_400_in_the_contracts_shape(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("audit:read")
    for params, field in [
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "eyJ4IjoxfQ"}, "cursor"),  # valid base64, wrong content
        ({"since": "last tuesday"}, "since"),
        ({"until": "2025-13-01T00:00"}, "until"),
        ({"type": "no.such_type"}, "type"),
        ({"limit": 0}, "limit"),
        # Moments that overflow the calendar when moved to UTC.
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),
        ({"cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwxLCJvbGRlciJd"}, "cursor"),
    ]:
        response = client.get(URL, params, headers=bearer(token))
        assert response.status_code == 400, params
        error = response.json()["error"]
        assert error["code"] == "invalid_query"
        assert error["details"][0]["field"] == field


def test_the_openapi_document_lists_the_endpoint(client: Any, personas: Any) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    parameters = {p["name"] for p in schema["paths"]["/api/v1/audit"]["get"]["parameters"]}
    assert {"type", "action", "flow", "actor", "since", "until", "cursor", "limit"} <= parameters
