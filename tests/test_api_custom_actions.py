from __future__ import annotations

from typing import Any

from audit_app.models import AuditEvent
from tests.factories import BAD, GOOD, SCHEMA, bearer, new_action, post


def test_create_an_action_then_versions_then_publish(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:read", "actions:write", "actions:publish")
    response = new_action(client, token)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["slug"] == "risk-gate" and created["kind"] == "custom"
    assert [v["version"] for v in created["versions"]] == ["0.1.0"]

    response = post(client, "/api/v1/actions/risk-gate/versions", token, {"source": GOOD + "// two"})
    assert response.status_code == 201
    assert response.json()["version"] == "0.1.1" and response.json()["created"] is True
    # Schema and triggers carried over from the latest version when omitted.
    version = client.get("/api/v1/actions/risk-gate/versions/0.1.1", headers=bearer(token)).json()
    assert version["config_schema"] == SCHEMA and version["compatible_triggers"] == ["login.post-auth"]
    assert version["source"].endswith("// two")

    response = post(client, "/api/v1/actions/risk-gate/versions", token, {"source": GOOD + "// three", "bump": "major"})
    assert response.json()["version"] == "1.0.0"
    same = post(client, "/api/v1/actions/risk-gate/versions", token, {"source": GOOD + "// three"})
    assert same.status_code == 200 and same.json() == {**same.json(), "version": "1.0.0", "created": False}

    response = post(client, "/api/v1/actions/risk-gate/versions/1.0.0/publish", token, {})
    assert response.status_code == 200 and response.json()["status"] == "published"
    listed = {i["slug"]: i for i in client.get("/api/v1/actions", headers=bearer(token)).json()["items"]}
    assert listed["risk-gate"]["published_versions"] == ["1.0.0"]
    assert listed["risk-gate"]["latest_version"] == "1.0.0"
    event = AuditEvent.objects.get(type="flow.action_published", action_slug="risk-gate")
    assert (event.actor_kind, event.action_version) == ("token", "1.0.0")


def test_type_errors_answer_422_with_line_and_column(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:write")
    response = new_action(client, token, source=BAD)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "type_errors"
    assert error["details"][0]["line"] == 2 and error["details"][0]["column"] > 0
    assert "blok" in error["details"][0]["message"]
    assert new_action(client, token, source=BAD, save_anyway=True).status_code == 201


def test_invalid_fields_answer_422_naming_them(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:write")
    response = new_action(client, token, slug="Bad Slug", compatible_triggers=["login.nowhere"])
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert {"slug", "compatible_triggers"} <= fields
    response = post(client, "/api/v1/actions", token, {"name": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_scopes_are_enforced_per_endpoint(client: Any, personas: Any, api_token: Any) -> None:
    reader = api_token("actions:read")
    response = new_action(client, reader)
    assert response.status_code == 403 and "actions:write" in response.json()["error"]["message"]
    writer = api_token("actions:write", "actions:read")
    new_action(client, writer)
    response = post(client, "/api/v1/actions/risk-gate/versions/0.1.0/publish", writer, {})
    assert response.status_code == 403 and "actions:publish" in response.json()["error"]["message"]
    response = post(client, "/api/v1/actions/risk-gate/versions/0.1.0/test", writer, {"input": {}})
    assert response.status_code == 403 and "runtime:execute" in response.json()["error"]["message"]


def test_another_tenants_actions_are_404(client: Any, personas: Any, api_token: Any) -> None:
    theirs = api_token("actions:read", "actions:write", tenant=personas.tenant_b)
    new_action(client, theirs)
    mine = api_token("actions:read", "actions:write", "actions:publish", "runtime:execute")
    for method, url in [
        ("get", "/api/v1/actions/risk-gate"),
        ("get", "/api/v1/actions/risk-gate/versions/0.1.0"),
        ("post", "/api/v1/actions/risk-gate/versions"),
        ("post", "/api/v1/actions/risk-gate/versions/0.1.0/publish"),
        ("post", "/api/v1/actions/risk-gate/versions/0.1.0/test"),
    ]:
        if method == "get":
            response = client.get(url, headers=bearer(mine))
        else:
            response = post(client, url, mine, {"source": GOOD, "input": {}})
        assert response.status_code == 404, (url, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
