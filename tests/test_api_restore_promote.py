"""Contract §14 over the API: POST /flows/{slug}/revisions/{n}/restore and POST /flows/{target}/promote,
both with If-Match, answering like a slot PUT."""

from __future__ import annotations

from typing import Any

from django.test import Client

from audit_app.models import AuditEvent
from flows_app.models import Binding
from flows_app.services import BindingSpec, create_flow
from tests.factories import bearer, error_fields, send_json
from tests.flow_helpers import SYSTEM, attach, flow_of

POST_AUTH = "login.post-auth"


def risk_block(threshold: int) -> BindingSpec:
    return BindingSpec("block-by-risk-score", "1.0.0", {"threshold": threshold, "message": "risky"})


def restore(client: Client, token: str, number: Any, if_match: str | None, slug: str = "login") -> Any:
    headers = {**bearer(token), **({"If-Match": if_match} if if_match is not None else {})}
    return client.post(f"/api/v1/flows/{slug}/revisions/{number}/restore", headers=headers)


def promote(client: Client, token: str, body: Any, if_match: str | None, target: str = "login") -> Any:
    headers = {"If-Match": if_match} if if_match is not None else {}
    return send_json(client, "post", f"/api/v1/flows/{target}/promote", token, body, **headers)


def thresholds(tenant: Any, slug: str = "login") -> list[int]:
    revision = flow_of(tenant, slug).current_revision
    return [b.config["threshold"] for b in Binding.objects.filter(revision=revision, trigger=POST_AUTH)]


def test_restore_answers_the_new_revision_like_a_slot_put(client: Client, personas: Any, api_token: Any) -> None:
    tenant = personas.tenant_a
    attach(tenant, POST_AUTH, risk_block(50))
    attach(tenant, POST_AUTH, risk_block(90))
    token = api_token("flows:read", "flows:write")
    response = restore(client, token, 2, "3")
    assert response.status_code == 200, response.content
    document = response.json()
    assert document["revision"] == 4 and response["ETag"] == '"4"'
    assert document["slots"][POST_AUTH][0]["config"]["threshold"] == 50
    assert document == client.get("/api/v1/flows/login", headers=bearer(token)).json()
    (event,) = AuditEvent.objects.filter(tenant=tenant, flow_revision=4)
    assert (event.type, event.actor_kind, event.target) == ("flow.action_updated", "token", "Restored revision 2")
    was, now = dict(event.before or {}), dict(event.after or {})
    assert (was["config"]["threshold"], now["config"]["threshold"]) == (90, 50)


def test_restore_refusals_name_what_is_wrong(client: Client, personas: Any, api_token: Any) -> None:
    tenant = personas.tenant_a
    attach(tenant, POST_AUTH, risk_block(50))
    attach(tenant, POST_AUTH, risk_block(90))
    token = api_token("flows:read", "flows:write")
    stale = restore(client, token, 2, "2")
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "stale_revision"
    assert stale.json()["error"]["details"] == {"current_revision": 3}
    missing = restore(client, token, 2, None)
    assert missing.status_code == 428 and error_fields(missing) == {"If-Match": missing.json()["error"]["message"]}
    assert restore(client, token, 2, "abc").status_code == 400
    unknown = restore(client, token, 9, "3")
    assert unknown.status_code == 404 and "no revision 9" in unknown.json()["error"]["message"]
    same = restore(client, token, 3, "3")
    assert same.status_code == 409 and same.json()["error"]["code"] == "nothing_to_change"
    assert restore(client, token, 0, "3").status_code == 422
    assert restore(client, token, 2, "3", slug="no-such-flow").status_code == 404
    # A config today's checks refuse: named binding by binding, nothing saved.
    Binding.objects.filter(revision__number=2, revision__flow__slug="login", revision__flow__tenant=tenant).update(
        config={"threshold": 150, "message": "risky"}
    )
    invalid = restore(client, token, 2, "3")
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "cannot_restore"
    assert list(error_fields(invalid)) == [f"{POST_AUTH}.0.config.threshold"]
    assert f"{POST_AUTH} #1 block-by-risk-score" in invalid.json()["error"]["message"]
    assert thresholds(tenant) == [90] and flow_of(tenant).current_revision.number == 3  # type: ignore[union-attr]
    assert not AuditEvent.objects.filter(tenant=tenant, flow_revision=4).exists()


def test_restore_and_promote_need_flows_write_and_stay_in_the_tokens_tenant(
    client: Client, personas: Any, api_token: Any
) -> None:
    attach(personas.tenant_a, POST_AUTH, risk_block(50))
    create_flow(personas.tenant_b, name="Theirs", slug="theirs", kind="login", acting=SYSTEM)
    read_only = api_token("flows:read")
    assert restore(client, read_only, 1, "2").status_code == 403
    assert promote(client, read_only, {"from": "login"}, "1", target="registration").status_code == 403
    token = api_token("flows:read", "flows:write")
    other = promote(client, token, {"from": "theirs"}, "2")
    assert other.status_code == 404 and list(error_fields(other)) == ["from"]
    theirs = api_token("flows:read", "flows:write", tenant=personas.tenant_b)
    assert restore(client, theirs, 1, "1").status_code == 409  # their own login flow: r1 only, already current
    assert thresholds(personas.tenant_a) == [50]


def test_promote_replaces_the_targets_bindings(client: Client, personas: Any, api_token: Any) -> None:
    tenant = personas.tenant_a
    create_flow(tenant, name="Login staging", slug="login-staging", kind="login", acting=SYSTEM)
    attach(tenant, POST_AUTH, risk_block(50))
    attach(tenant, POST_AUTH, risk_block(75), flow_slug="login-staging")
    token = api_token("flows:read", "flows:write")
    response = promote(client, token, {"from": "login-staging"}, "2")
    assert response.status_code == 200, response.content
    assert response.json()["revision"] == 3 and response["ETag"] == '"3"'
    assert thresholds(tenant) == [75]
    (event,) = AuditEvent.objects.filter(tenant=tenant, flow_slug="login", flow_revision=3)
    assert (event.type, event.actor_kind, event.target) == (
        "flow.action_updated",
        "token",
        "Promoted from login-staging r2",
    )
    again = promote(client, token, {"from": "login-staging"}, "3")
    assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_change"


def test_promote_refusals_name_the_field(client: Client, personas: Any, api_token: Any) -> None:
    tenant = personas.tenant_a
    create_flow(tenant, name="Login staging", slug="login-staging", kind="login", acting=SYSTEM)
    attach(tenant, POST_AUTH, risk_block(75), flow_slug="login-staging")
    token = api_token("flows:read", "flows:write")
    stale = promote(client, token, {"from": "login-staging"}, "7")
    assert stale.status_code == 412 and stale.json()["error"]["details"] == {"current_revision": 1}
    assert promote(client, token, {"from": "login-staging"}, None).status_code == 428
    unknown = promote(client, token, {"from": "nope"}, "1")
    assert unknown.status_code == 404 and "nope" in error_fields(unknown)["from"]
    other_kind = promote(client, token, {"from": "registration"}, "1")
    assert other_kind.status_code == 422 and "same kind" in error_fields(other_kind)["from"]
    itself = promote(client, token, {"from": "login"}, "1")
    assert itself.status_code == 422 and "into itself" in error_fields(itself)["from"]
    no_revision = promote(client, token, {"from": "login-staging", "from_revision": 9}, "1")
    assert no_revision.status_code == 422 and "no revision 9" in error_fields(no_revision)["from_revision"]
    for body in ({}, {"from": ""}):
        missing = promote(client, token, body, "1")
        assert missing.status_code == 422 and list(error_fields(missing)) == ["from"], body
    assert flow_of(tenant).current_revision.number == 1  # type: ignore[union-attr]
