from __future__ import annotations

import json
from typing import Any

from actions_app.versioning import VersionDraft, publish_version, save_action_version
from audit_app.models import AuditEvent
from flows_app.models import Binding
from flows_app.services import create_flow
from tenants.acting import Acting
from tests.factories import bearer, run_login
from tests.flow_helpers import SYSTEM, custom_action

BLOCK_RISK = {"action": "block-by-risk-score", "version": "1.0.0", "config": {"threshold": 50}}


def put_slot(
    client: Any, token: str, body: dict[str, Any], if_match: str | None = "1", trigger: str = "login.post-auth"
) -> Any:
    headers = bearer(token)
    if if_match is not None:
        headers["If-Match"] = if_match
    return client.put(
        f"/api/v1/flows/login/slots/{trigger}", data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_get_flows_and_one_flow(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("flows:read")
    items = client.get("/api/v1/flows", headers=bearer(token)).json()["items"]
    assert sorted(f["slug"] for f in items) == ["login", "password-reset", "registration", "token-refresh"]
    response = client.get("/api/v1/flows/login", headers=bearer(token))
    flow = response.json()
    assert flow["revision"] == 1 and response["ETag"] == '"1"'
    assert list(flow["slots"]) == [
        "login.pre-credential-check",
        "login.post-auth",
        "login.pre-token",
        "login.post-login",
    ]


def test_put_a_slot_then_run_it(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("flows:read", "flows:write", "runtime:execute")
    response = put_slot(client, token, {"bindings": [BLOCK_RISK]})
    assert response.status_code == 200, response.content
    assert response.json()["revision"] == 2
    assert response.json()["slots"]["login.post-auth"][0]["action"] == "block-by-risk-score"
    result = run_login(client, token).json()
    assert result["flow_revision"] == 2
    assert result["outcome"]["kind"] == "block"
    assert result["executions"][0]["action"] == "block-by-risk-score"
    assert result["executions"][0]["outcome"] == "block"
    events = AuditEvent.objects.filter(type="flow.action_attached")
    assert [(e.actor_kind, e.flow_revision, e.trigger) for e in events] == [("token", 2, "login.post-auth")]


def test_a_stale_if_match_answers_412(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("flows:read", "flows:write")
    put_slot(client, token, {"bindings": [BLOCK_RISK]})
    response = put_slot(client, token, {"bindings": []}, if_match="1")
    assert response.status_code == 412
    assert response.json()["error"]["details"] == {"current_revision": 2}
    assert put_slot(client, token, {"bindings": []}, if_match=None).status_code == 428


def test_422_for_incompatible_trigger_unpublished_version_or_invalid_config(
    client: Any, personas: Any, api_token: Any
) -> None:
    token = api_token("flows:read", "flows:write")
    wrong_slot = put_slot(client, token, {"bindings": [BLOCK_RISK]}, trigger="login.pre-token")
    assert wrong_slot.status_code == 422
    assert "cannot run in login.pre-token" in wrong_slot.json()["error"]["details"][0]["message"]
    assert put_slot(client, token, {"bindings": []}, trigger="registration.pre-create").status_code == 422
    draft = custom_action(personas.tenant_a, "drafty", 'return { kind: "continue" };', ["login.post-auth"])
    draft.versions.update(status="draft")
    unpublished = put_slot(client, token, {"bindings": [{"action": "drafty", "version": "0.1.0"}]})
    assert unpublished.status_code == 422 and "not published" in unpublished.content.decode()
    bad_config = put_slot(client, token, {"bindings": [{**BLOCK_RISK, "config": {"threshold": "high"}}]})
    assert bad_config.status_code == 422
    assert bad_config.json()["error"]["details"][0]["field"] == "login.post-auth.0.config.threshold"


def test_newer_version_available_is_reported(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("flows:read", "flows:write")
    binding = {"action": "rate-limit-by-ip", "version": "1.0.0", "config": {"limit": 5, "window_seconds": 60}}
    put_slot(client, token, {"bindings": [binding]}, trigger="login.pre-credential-check")
    flow = client.get("/api/v1/flows/login", headers=bearer(token)).json()
    assert flow["slots"]["login.pre-credential-check"][0]["newer_version_available"] == "1.1.0"

    # Only a version the slot can run is offered: a newer one for another slot is not.
    gate = custom_action(
        personas.tenant_a, "gate", "return { kind: 'continue' };", ["login.post-auth", "login.pre-token"]
    )
    put_slot(client, token, {"bindings": [{"action": "gate", "version": "0.1.0"}]}, if_match="2")
    draft = VersionDraft(
        gate.versions.get().source + "// newer\n", {"type": "object", "properties": {}}, ["login.pre-token"]
    )
    publish_version(save_action_version(gate, draft, acting=SYSTEM).version, acting=SYSTEM)
    flow = client.get("/api/v1/flows/login", headers=bearer(token)).json()
    assert flow["slots"]["login.post-auth"][0]["newer_version_available"] is None


def test_transactions_keep_their_revision_over_the_api(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("flows:read", "flows:write", "runtime:execute")
    first = run_login(client, token, trigger="login.pre-credential-check").json()
    put_slot(client, token, {"bindings": [BLOCK_RISK]})
    same = run_login(client, token, transaction_id=first["transaction_id"]).json()
    assert same["flow_revision"] == 1 and same["outcome"]["kind"] == "continue"
    fresh = run_login(client, token).json()
    assert fresh["flow_revision"] == 2 and fresh["outcome"]["kind"] == "block"


def test_scopes_and_tenants(client: Any, personas: Any, api_token: Any) -> None:
    reader = api_token("flows:read")
    assert put_slot(client, reader, {"bindings": []}).status_code == 403
    assert run_login(client, reader).status_code == 403
    theirs = api_token("flows:read", "flows:write", "runtime:execute", tenant=personas.tenant_b)
    # flow slugs are the same in every tenant; each token reaches only its own
    put_slot(client, theirs, {"bindings": [BLOCK_RISK]})
    mine = api_token("flows:read")
    assert client.get("/api/v1/flows/login", headers=bearer(mine)).json()["revision"] == 1
    assert client.get("/api/v1/flows/no-such-flow", headers=bearer(mine)).status_code == 404


def test_another_tenants_flow_is_404_everywhere_in_the_api(client: Any, personas: Any, api_token: Any) -> None:
    create_flow(personas.tenant_b, name="Globex staging", slug="globex-staging", kind="login", acting=SYSTEM)
    mine = api_token("flows:read", "flows:write", "runtime:execute")
    path = "/api/v1/flows/globex-staging"
    assert client.get(path, headers=bearer(mine)).status_code == 404
    put = client.put(
        f"{path}/slots/login.post-auth",
        data=json.dumps({"bindings": [BLOCK_RISK]}),
        content_type="application/json",
        headers={**bearer(mine), "If-Match": "1"},
    )
    assert put.status_code == 404
    assert run_login(client, mine, slug="globex-staging").status_code == 404
    listed = client.get("/api/v1/flows", {"limit": 100}, headers=bearer(mine)).json()["items"]
    assert "globex-staging" not in [flow["slug"] for flow in listed]
    # Nothing was attached to their flow.
    assert not Binding.objects.filter(revision__flow__slug="globex-staging").exists()


def test_run_validates_its_body(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("runtime:execute")
    response = run_login(client, token, user={"email": "x@example.com"})
    assert response.status_code == 422
    assert run_login(client, token, trigger="registration.pre-create").status_code == 422
    assert run_login(client, token, context={"risk": {"score": 500}}).status_code == 422


def test_run_refuses_what_the_database_cannot_store(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("runtime:execute")
    user = {"id": "u1", "email": "jane@example.com"}
    for app_metadata, problem in ((float("nan"), "NaN"), ("a\u0000b", "NUL"), ("a\ud800b", "surrogate")):
        response = run_login(client, token, user={**user, "app_metadata": {"plan": app_metadata}})
        assert response.status_code == 422, response.content
        assert "app_metadata" in response.content.decode() and problem in response.content.decode()


def test_the_flows_list_pages_by_cursor(client: Any, personas: Any, api_token: Any) -> None:
    from tests.factories import walk_pages

    token = api_token("flows:read")
    pages = walk_pages(client, "/api/v1/flows", token, limit=3)
    assert [[f["slug"] for f in page["items"]] for page in pages] == [
        ["login", "password-reset", "registration"],
        ["token-refresh"],
    ]
    response = client.get("/api/v1/flows", {"cursor": "bm9wZQ"}, headers=bearer(token))
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"field": "cursor", "message": "This cursor is not valid; pass the `next` value of a previous page."}
    ]


def test_if_match_problems_name_the_header(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("flows:read", "flows:write")
    for if_match, status in [(None, 428), ("²", 400), ("1" * 40, 400), ("abc", 400)]:
        response = put_slot(client, token, {"bindings": []}, if_match=if_match)
        assert response.status_code == status, if_match
        assert response.json()["error"]["details"][0]["field"] == "If-Match"


def test_the_flows_list_costs_the_same_queries_for_more_flows_and_bindings(
    client: Any, personas: Any, api_token: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from flows_app.services import BindingSpec, create_flow
    from tests.flow_helpers import attach

    token = api_token("flows:read")

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/flows", headers=bearer(token)).status_code == 200
        return len(captured)

    attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    queries_for_list()  # the token's first use also records when it was last used
    few = queries_for_list()
    for n in range(4):
        create_flow(
            personas.tenant_a, name=f"Login {n}", slug=f"login-{n}", kind="login", acting=Acting.platform("tests")
        )
    spec = BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80})
    attach(personas.tenant_a, "login.post-auth", spec, flow_slug="login-0")
    items = client.get("/api/v1/flows", headers=bearer(token)).json()["items"]
    assert len(items) == 8 and sum(len(b) for f in items for b in f["slots"].values()) == 2
    assert queries_for_list() == few
