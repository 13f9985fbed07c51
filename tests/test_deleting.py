"""Contract §14: owners delete custom actions no current flow revision uses, and flows that are
not system flows, in the web UI and the API; history stays readable and the slug is free again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from actions_app.models import Action
from audit_app.models import AuditEvent
from flows_app.models import ActionExecution, Flow, FlowTransaction
from flows_app.run_records import settle_pending
from flows_app.services import BindingSpec, create_flow
from tests.factories import web
from tests.flow_helpers import SYSTEM, attach, custom_action, run

POST_AUTH = "login.post-auth"
SOURCE = 'return { kind: "continue" };'


def api(client: Client, method: str, url: str, token: str) -> Any:
    return getattr(client, method)(url, headers={"authorization": f"Bearer {token}"})


def staging(tenant: Any) -> Flow:
    return create_flow(tenant, name="Login staging", slug="login-staging", kind="login", acting=SYSTEM)


def test_it_deletes_an_unattached_custom_action_from_the_confirmation_page(personas: Any) -> None:
    custom_action(personas.tenant_a, "geo-gate", SOURCE, [POST_AUTH])
    owner = web(personas.owner)
    url = f"/t/{personas.tenant_a.slug}/actions/geo-gate/delete/"
    page = owner.get(url)
    assert page.status_code == 200
    assert b"attached to no flow" in page.content and b"becomes free" in page.content
    response = owner.post(url)
    assert response.status_code == 302
    assert not Action.objects.filter(tenant=personas.tenant_a, slug="geo-gate").exists()
    assert Action.all_objects.get(tenant=personas.tenant_a, slug="geo-gate").deleted_at is not None
    assert owner.get(f"/t/{personas.tenant_a.slug}/actions/geo-gate/").status_code == 404
    listing = owner.get(f"/t/{personas.tenant_a.slug}/actions/").content
    assert b"Deleted the action geo-gate" in listing and b'/actions/geo-gate/"' not in listing
    (event,) = AuditEvent.objects.filter(tenant=personas.tenant_a, type="action.deleted")
    assert (event.action_slug, event.actor_kind, event.actor_id) == ("geo-gate", "user", str(personas.owner.pk))


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
def test_it_refuses_deleting_below_owner(personas: Any, role: str) -> None:
    custom_action(personas.tenant_a, "geo-gate", SOURCE, [POST_AUTH])
    staging(personas.tenant_a)
    client = web(personas.by_role()[role])
    action_page = client.get(f"/t/{personas.tenant_a.slug}/actions/geo-gate/delete/")
    assert action_page.status_code == 200 and b"Only an owner" in action_page.content
    assert client.post(f"/t/{personas.tenant_a.slug}/actions/geo-gate/delete/").status_code == 403
    assert client.post(f"/t/{personas.tenant_a.slug}/flows/login-staging/delete/").status_code == 403
    assert Action.objects.filter(slug="geo-gate").exists() and Flow.objects.filter(slug="login-staging").exists()


def test_outsiders_get_404(personas: Any) -> None:
    custom_action(personas.tenant_a, "geo-gate", SOURCE, [POST_AUTH])
    staging(personas.tenant_a)
    client = web(personas.outsider)
    for url in ("actions/geo-gate/delete/", "flows/login-staging/delete/"):
        assert client.get(f"/t/{personas.tenant_a.slug}/{url}").status_code == 404
        assert client.post(f"/t/{personas.tenant_a.slug}/{url}").status_code == 404
    assert Action.objects.filter(slug="geo-gate").exists() and Flow.objects.filter(slug="login-staging").exists()


def test_an_attached_action_is_refused_naming_its_flows(personas: Any, api_token: Any) -> None:
    tenant = personas.tenant_a
    custom_action(tenant, "geo-gate", SOURCE, [POST_AUTH])
    staging(tenant)
    attach(tenant, POST_AUTH, BindingSpec("geo-gate", "0.1.0", {}))
    attach(tenant, POST_AUTH, BindingSpec("geo-gate", "0.1.0", {}), flow_slug="login-staging")
    owner = web(personas.owner)
    page = owner.get(f"/t/{tenant.slug}/actions/geo-gate/delete/")
    assert b'href="/t/acme/flows/login/"' in page.content and b'href="/t/acme/flows/login-staging/"' in page.content
    assert owner.post(f"/t/{tenant.slug}/actions/geo-gate/delete/").status_code == 409
    response = api(Client(), "delete", "/api/v1/actions/geo-gate", api_token("actions:write"))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "action_in_use"
    assert [d["flow"] for d in error["details"]] == ["login", "login-staging"]
    assert "login-staging" in error["message"]
    assert Action.objects.filter(slug="geo-gate").exists()
    # Detached from its current revisions (earlier revisions still pin it): now it can go.
    attach(tenant, POST_AUTH)
    attach(tenant, POST_AUTH, flow_slug="login-staging")
    assert api(Client(), "delete", "/api/v1/actions/geo-gate", api_token("actions:write")).status_code == 204


def test_the_api_deletes_an_action_and_the_slug_can_be_used_again(personas: Any, api_token: Any) -> None:
    tenant = personas.tenant_a
    custom_action(tenant, "geo-gate", SOURCE, [POST_AUTH])
    client = Client()
    assert api(client, "delete", "/api/v1/actions/geo-gate", api_token("actions:read")).status_code == 403
    token = api_token("actions:read", "actions:write")
    response = api(client, "delete", "/api/v1/actions/geo-gate", token)
    assert response.status_code == 204, response.content
    assert api(client, "get", "/api/v1/actions/geo-gate", token).status_code == 404
    assert api(client, "delete", "/api/v1/actions/geo-gate", token).status_code == 404
    listed = api(client, "get", "/api/v1/actions?kind=custom", token).json()["items"]
    assert "geo-gate" not in [a["slug"] for a in listed]
    (event,) = AuditEvent.objects.filter(tenant=tenant, type="action.deleted")
    assert event.actor_kind == "token"
    again = custom_action(tenant, "geo-gate", SOURCE, [POST_AUTH])
    assert Action.all_objects.filter(tenant=tenant, slug="geo-gate").count() == 2
    assert again.deleted_at is None
    # Templates are no custom actions: never deleted.
    assert api(client, "delete", "/api/v1/actions/webhook-emit", token).status_code == 409
    # Another tenant's action is not found.
    custom_action(personas.tenant_b, "other-gate", SOURCE, [POST_AUTH])
    assert api(client, "delete", "/api/v1/actions/other-gate", token).status_code == 404


def test_executions_and_audit_of_a_deleted_action_stay_readable(personas: Any) -> None:
    tenant = personas.tenant_a
    custom_action(tenant, "geo-gate", SOURCE, [POST_AUTH])
    attach(tenant, POST_AUTH, BindingSpec("geo-gate", "0.1.0", {}))
    run(tenant, POST_AUTH)
    while settle_pending():
        pass
    attach(tenant, POST_AUTH)
    owner = web(personas.owner)
    assert owner.post(f"/t/{tenant.slug}/actions/geo-gate/delete/").status_code == 302
    execution = ActionExecution.objects.get(tenant=tenant)
    assert execution.action.slug == "geo-gate"
    executed = AuditEvent.objects.get(tenant=tenant, type="flow.action_executed")
    log = owner.get(f"/t/{tenant.slug}/audit/?action=geo-gate")
    assert log.status_code == 200
    assert b"action.deleted" in log.content and b"flow.action_executed" in log.content
    detail = owner.get(f"/t/{tenant.slug}/audit/{executed.pk}/")
    assert detail.status_code == 200 and b"geo-gate" in detail.content
    revisions = owner.get(f"/t/{tenant.slug}/flows/login/revisions/")
    assert revisions.status_code == 200


def test_an_owner_deletes_a_flow_its_runs_are_refused_and_the_slug_is_free(personas: Any, api_token: Any) -> None:
    tenant = personas.tenant_a
    staging(tenant)
    run(tenant, POST_AUTH, flow_slug="login-staging", transaction_id="tx-1")
    assert FlowTransaction.objects.filter(flow__slug="login-staging").exists()
    owner = web(personas.owner)
    page = owner.get(f"/t/{tenant.slug}/flows/login-staging/delete/")
    assert page.status_code == 200 and b"stops running at once" in page.content
    assert owner.post(f"/t/{tenant.slug}/flows/login-staging/delete/").status_code == 302
    assert not FlowTransaction.objects.filter(flow__slug="login-staging").exists()
    (event,) = AuditEvent.objects.filter(tenant=tenant, type="flow.deleted")
    assert (event.flow_slug, event.actor_kind) == ("login-staging", "user")
    assert owner.get(f"/t/{tenant.slug}/flows/login-staging/").status_code == 404
    token = api_token("flows:read", "flows:write", "runtime:execute")
    client = Client()
    body = {
        "trigger": POST_AUTH,
        "user": {"id": "u1", "email": "jane@example.com", "email_verified": True, "groups": []},
        "request": {"ip": "203.0.113.9", "user_agent": "curl", "hostname": "login.example.com"},
    }
    headers = {"authorization": f"Bearer {token}"}
    ran = client.post("/api/v1/flows/login-staging/run", json.dumps(body), "application/json", headers=headers)
    assert ran.status_code == 404, ran.content
    assert (
        client.post("/api/v1/flows/login/run", json.dumps(body), "application/json", headers=headers).status_code == 200
    )
    assert api(client, "get", "/api/v1/flows/login-staging", token).status_code == 404
    assert "login-staging" not in [f["slug"] for f in api(client, "get", "/api/v1/flows", token).json()["items"]]
    again = staging(tenant)
    assert again.deleted_at is None and Flow.all_objects.filter(tenant=tenant, slug="login-staging").count() == 2
    assert api(client, "delete", "/api/v1/flows/login-staging", token).status_code == 204
    assert AuditEvent.objects.filter(tenant=tenant, type="flow.deleted", actor_kind="token").count() == 1


def test_a_system_flow_is_refused(personas: Any, api_token: Any) -> None:
    owner = web(personas.owner)
    page = owner.get(f"/t/{personas.tenant_a.slug}/flows/login/delete/")
    assert page.status_code == 200 and b"cannot be deleted" in page.content
    assert owner.post(f"/t/{personas.tenant_a.slug}/flows/login/delete/").status_code == 409
    response = api(Client(), "delete", "/api/v1/flows/login", api_token("flows:write"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "cannot_delete"
    assert api(Client(), "delete", "/api/v1/flows/login", api_token("flows:read")).status_code == 403
    assert Flow.objects.filter(tenant=personas.tenant_a, slug="login").exists()
    assert not AuditEvent.objects.filter(type="flow.deleted").exists()
