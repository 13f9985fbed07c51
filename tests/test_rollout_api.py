"""POST /api/v1/actions/{slug}/rollout: create or version, publish and pin in one transaction."""

from __future__ import annotations

import json
import uuid
from typing import Any

from actions_app.models import ActionVersion
from audit_app.models import AuditEvent
from flows_app.models import Binding, FlowRevision
from flows_app.services import BindingSpec
from tenants.acting import Acting
from tenants.services import revoke_api_token
from tests.factories import BAD, GOOD, bearer
from tests.flow_helpers import attach, custom_action, flow_of

URL = "/api/v1/actions/risk-gate/rollout"
SCHEMA = {"type": "object", "properties": {"threshold": {"type": "integer"}}, "required": ["threshold"]}
# The new schema wants a field the bindings attached under SCHEMA do not have.
STRICTER = {
    "type": "object",
    "properties": {"threshold": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["threshold", "message"],
}
ALL_SCOPES = ("actions:read", "actions:write", "actions:publish", "flows:read", "flows:write")
PIN = [{"flow": "login", "trigger": "login.post-auth"}]


def rollout(client: Any, token: str, headers: dict[str, str] | None = None, **overrides: Any) -> Any:
    body = {
        "name": "Risk gate",
        "compatible_triggers": ["login.post-auth"],
        "config_schema": SCHEMA,
        "source": GOOD,
        **overrides,
    }
    return client.post(
        URL, data=json.dumps(body), content_type="application/json", headers={**bearer(token), **(headers or {})}
    )


def footprint(tenant: Any) -> tuple[list[str], int, int]:
    """What a rollout could write: the action's versions with status, audit events, flow revisions."""
    versions = [
        f"{v.version}:{v.status}"
        for v in ActionVersion.objects.filter(action__tenant=tenant, action__slug="risk-gate").order_by("id")
    ]
    return (
        versions,
        AuditEvent.objects.filter(tenant=tenant).count(),
        FlowRevision.objects.filter(flow__tenant=tenant).count(),
    )


def pinned(tenant: Any, trigger: str = "login.post-auth") -> list[tuple[str, str, dict[str, Any]]]:
    flow = flow_of(tenant)
    return [
        (b.action.slug, b.pinned_version.version, b.config)
        for b in Binding.objects.filter(revision=flow.current_revision, trigger=trigger).order_by("position")
    ]


def test_it_creates_publishes_and_attaches_in_one_call(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token(*ALL_SCOPES)
    response = rollout(client, token, publish=True, pin=PIN, attach_config={"threshold": 70})
    assert response.status_code == 200, response.content
    document = response.json()
    assert document == {
        "action": "risk-gate",
        "dry_run": False,
        "change": "created",
        "version": "0.1.0",
        "previous_version": None,
        "status": "published",
        "published_now": True,
        "bindings": [
            {
                "flow": "login",
                "trigger": "login.post-auth",
                "position": 0,
                "change": "attached",
                "from_version": None,
                "to_version": "0.1.0",
            }
        ],
        "flow_revisions": {"login": 2},
        "changed_anything": True,
    }
    assert pinned(personas.tenant_a) == [("risk-gate", "0.1.0", {"threshold": 70})]
    events = AuditEvent.objects.filter(tenant=personas.tenant_a, action_slug="risk-gate").order_by("id")
    assert [e.type for e in events] == [
        "action.created",
        "action.version_saved",
        "flow.action_published",
        "flow.action_attached",
    ]
    assert {e.actor_kind for e in events} == {"token"}


def test_a_new_source_moves_existing_bindings_and_keeps_their_config(
    client: Any, personas: Any, api_token: Any
) -> None:
    token = api_token(*ALL_SCOPES)
    rollout(client, token, publish=True, pin=PIN, attach_config={"threshold": 70})
    # Another action in the same slot stays where it is.
    custom_action(personas.tenant_a, "other", "return { kind: 'continue' };", ["login.post-auth"])
    flow = flow_of(personas.tenant_a)
    bindings = [
        BindingSpec(action=b.action.slug, version=b.pinned_version.version, config=b.config, key=b.key)
        for b in Binding.objects.filter(revision=flow.current_revision).select_related("action", "pinned_version")
    ]
    attach(personas.tenant_a, "login.post-auth", BindingSpec(action="other", version="0.1.0"), *bindings)

    response = rollout(client, token, source=GOOD + "// two", publish=True, pin=PIN)
    document = response.json()
    assert (document["change"], document["version"], document["previous_version"]) == ("new_version", "0.1.1", "0.1.0")
    assert document["bindings"] == [
        {
            "flow": "login",
            "trigger": "login.post-auth",
            "position": 1,
            "change": "updated",
            "from_version": "0.1.0",
            "to_version": "0.1.1",
        }
    ]
    assert pinned(personas.tenant_a) == [("other", "0.1.0", {}), ("risk-gate", "0.1.1", {"threshold": 70})]
    updated = AuditEvent.objects.filter(tenant=personas.tenant_a, type="flow.action_updated").latest("id")
    assert updated.before is not None and updated.after is not None
    assert (updated.before["version"], updated.after["version"]) == ("0.1.0", "0.1.1")


def test_repeating_a_rollout_changes_nothing(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token(*ALL_SCOPES)
    rollout(client, token, publish=True, pin=PIN, attach_config={"threshold": 70})
    before = footprint(personas.tenant_a)
    document = rollout(client, token, publish=True, pin=PIN, attach_config={"threshold": 70}).json()
    assert (document["change"], document["published_now"], document["changed_anything"]) == ("unchanged", False, False)
    assert document["bindings"][0]["change"] == "unchanged"
    assert document["flow_revisions"] == {"login": 2}
    assert footprint(personas.tenant_a) == before


def test_a_dry_run_answers_the_plan_and_writes_nothing(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token(*ALL_SCOPES)
    rollout(client, token, publish=True, pin=PIN, attach_config={"threshold": 70})
    before = footprint(personas.tenant_a)
    document = rollout(client, token, source=GOOD + "// two", publish=True, pin=PIN, dry_run=True).json()
    assert (document["dry_run"], document["change"], document["version"]) == (True, "new_version", "0.1.1")
    assert (document["status"], document["published_now"]) == ("published", True)
    assert document["bindings"][0]["change"] == "updated"
    assert document["flow_revisions"] == {"login": 3}
    assert footprint(personas.tenant_a) == before
    assert pinned(personas.tenant_a) == [("risk-gate", "0.1.0", {"threshold": 70})]


def test_a_binding_config_the_new_schema_refuses_writes_nothing(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token(*ALL_SCOPES)
    rollout(client, token, publish=True, pin=PIN, attach_config={"threshold": 70})
    before = footprint(personas.tenant_a)
    response = rollout(client, token, source=GOOD + "// two", config_schema=STRICTER, publish=True, pin=PIN)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_pins"
    assert "nothing was written" in error["message"]
    assert error["details"] == [
        {"field": "login:login.post-auth.0.config.message", "message": "This field is required."}
    ]
    # No version 0.1.1, nothing published, no audit event, no flow revision.
    assert footprint(personas.tenant_a) == before
    # The same dry run says so without writing either.
    dry = rollout(client, token, config_schema=STRICTER, pin=PIN, publish=True, dry_run=True)
    assert dry.status_code == 422
    assert dry.json()["error"]["code"] == "invalid_pins"
    assert footprint(personas.tenant_a) == before


def test_type_errors_come_back_with_line_and_column_and_nothing_is_created(
    client: Any, personas: Any, api_token: Any
) -> None:
    token = api_token(*ALL_SCOPES)
    before = footprint(personas.tenant_a)
    response = rollout(client, token, source=BAD, publish=True, pin=PIN)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "type_errors"
    assert error["details"][0]["line"] == 2 and error["details"][0]["column"] > 0
    assert footprint(personas.tenant_a) == before


def test_pinning_an_unpublished_version_is_refused(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token(*ALL_SCOPES)
    before = footprint(personas.tenant_a)
    response = rollout(client, token, pin=PIN, attach_config={"threshold": 1})
    assert response.status_code == 422
    assert "not published" in response.json()["error"]["details"][0]["message"]
    assert footprint(personas.tenant_a) == before


def test_unknown_flows_and_slots_are_named(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token(*ALL_SCOPES)
    pins = [{"flow": "nowhere", "trigger": "login.post-auth"}, {"flow": "login", "trigger": "registration.pre-create"}]
    response = rollout(client, token, publish=True, pin=pins)
    assert response.status_code == 422
    details = {d["field"]: d["message"] for d in response.json()["error"]["details"]}
    assert details["nowhere:login.post-auth"] == "No flow 'nowhere' in this tenant."
    assert "not a slot of the login flow" in details["login:registration.pre-create"]


def test_a_stale_expected_revision_answers_412(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token(*ALL_SCOPES)
    before = footprint(personas.tenant_a)
    response = rollout(client, token, publish=True, pin=PIN, expected_flow_revisions={"login": 7})
    assert response.status_code == 412
    assert response.json()["error"]["details"] == {"flow": "login", "current_revision": 1}
    assert footprint(personas.tenant_a) == before


def test_missing_scopes_are_all_named(client: Any, personas: Any, api_token: Any) -> None:
    response = rollout(client, api_token("actions:write"), publish=True, pin=PIN)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["details"]["missing_scopes"] == ["actions:publish", "flows:write"]
    assert error["details"]["required_scope"] == "actions:publish"
    assert "actions:publish, flows:write" in error["message"]
    assert rollout(client, api_token("actions:write")).status_code == 200


def test_a_revoked_token_is_refused(client: Any, personas: Any) -> None:
    from tenants.services import create_api_token

    row, token = create_api_token(personas.tenant_a, name="ci", scopes=list(ALL_SCOPES), acting=Acting.platform("t"))
    revoke_api_token(row, acting=Acting.platform("t"))
    assert rollout(client, token).status_code == 401


def test_a_template_slug_is_refused(client: Any, personas: Any, api_token: Any) -> None:
    response = client.post(
        "/api/v1/actions/rate-limit-by-ip/rollout",
        data=json.dumps({"name": "x", "compatible_triggers": ["login.post-auth"], "source": GOOD}),
        content_type="application/json",
        headers=bearer(api_token("actions:write")),
    )
    assert response.status_code == 422
    assert "platform template" in response.json()["error"]["details"][0]["message"]


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(
    client: Any, personas: Any, api_token: Any
) -> None:
    token = api_token(*ALL_SCOPES)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = rollout(client, token, key)
    assert first.json()["change"] == "created"
    retry = rollout(client, token, key)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    # Without the key the same content is simply no change.
    assert rollout(client, token).json()["change"] == "unchanged"
    reused = rollout(client, token, key, source=GOOD + "// other")
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "invalid_idempotency_key"
    assert footprint(personas.tenant_a)[0] == ["0.1.0:draft"]


def test_the_openapi_document_describes_the_rollout(client: Any) -> None:
    operation = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/actions/{slug}/rollout"]["post"]
    assert {"200", "401", "403", "412", "422", "429"} <= set(operation["responses"])
    assert operation["security"] == [{"TenantTokenAuth": ["actions:write"]}]
    assert "actions:publish" in operation["description"] and "flows:write" in operation["description"]
    assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation["parameters"])


def test_a_token_without_actions_write_gets_403_before_its_body_is_read(
    client: Any, personas: Any, api_token: Any
) -> None:
    response = client.post(
        "/api/v1/actions/risk-gate/rollout",
        data="{not json",
        content_type="application/json",
        headers=bearer(api_token("actions:read")),
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_scope"] == "actions:write"
