"""The secrets endpoints of the management API (contract §11): names out, values in and never out,
the contract's error shape naming the field, the token's tenant only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actions_app.models import Action, ActionKind, ActionSecret
from actions_app.secrets import secrets_for_execution, set_secret
from audit_app.models import AuditEvent
from tenants.acting import Acting
from tests.factories import add_custom_action, bearer, error_fields, send_json

VALUE = "sk_live_0123456789abcdef"
URL = "/api/v1/actions/crm-lookup/secrets"


@pytest.fixture
def action(personas: Any) -> Action:
    return add_custom_action(personas.tenant_a, "crm-lookup")


def put(client: Any, token: str, name: str, body: Any, slug: str = "crm-lookup") -> Any:
    return send_json(client, "put", f"/api/v1/actions/{slug}/secrets/{name}", token, body)


def test_it_sets_lists_replaces_and_deletes_a_secret(client: Any, action: Action, api_token: Any) -> None:
    token = api_token("actions:read", "actions:write")
    assert client.get(URL, headers=bearer(token)).json() == {"items": []}

    response = put(client, token, "CRM_KEY", {"value": VALUE})
    assert response.status_code == 204 and response.content == b""
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE}
    [item] = client.get(URL, headers=bearer(token)).json()["items"]
    assert set(item) == {"name", "updated_at", "updated_by"}
    assert (item["name"], item["updated_by"]) == ("CRM_KEY", "test token")

    assert put(client, token, "CRM_KEY", {"value": VALUE + "-rotated"}).status_code == 204
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE + "-rotated"}
    assert put(client, token, "A_SECOND", {"value": "two"}).status_code == 204
    listed = client.get(URL, headers=bearer(token)).json()["items"]
    assert [i["name"] for i in listed] == ["A_SECOND", "CRM_KEY"]

    response = client.delete(f"{URL}/CRM_KEY", headers=bearer(token))
    assert response.status_code == 204
    assert [i["name"] for i in client.get(URL, headers=bearer(token)).json()["items"]] == ["A_SECOND"]


def test_the_value_is_in_no_answer_and_no_audit_row(client: Any, action: Action, api_token: Any) -> None:
    token = api_token("actions:read", "actions:write")
    answers = [
        put(client, token, "CRM_KEY", {"value": VALUE}),
        put(client, token, "CRM_KEY", {"value": VALUE}),
        put(client, token, "bad-name", {"value": VALUE}),
        put(client, token, "CRM_KEY", {"value": VALUE + "x" * 5000}),
        client.get(URL, headers=bearer(token)),
        client.get("/api/v1/actions/crm-lookup", headers=bearer(token)),
        client.delete(f"{URL}/CRM_KEY", headers=bearer(token)),
    ]
    assert all(VALUE.encode() not in answer.content for answer in answers)
    events = AuditEvent.objects.filter(tenant=action.tenant, type__startswith="action.secret_")
    assert [e.type for e in events.order_by("seq")] == [
        "action.secret_set",
        "action.secret_set",
        "action.secret_deleted",
    ]
    assert all(e.actor_kind == "token" for e in events)
    rows = json.dumps(list(AuditEvent.objects.filter(tenant=action.tenant).values()), default=str)
    assert VALUE not in rows


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", URL, "actions:read"),
        ("put", f"{URL}/CRM_KEY", "actions:write"),
        ("delete", f"{URL}/CRM_KEY", "actions:write"),
    ],
)
def test_each_endpoint_needs_its_scope(
    client: Any, action: Action, api_token: Any, method: str, path: str, scope: str
) -> None:
    set_secret(action, "CRM_KEY", VALUE, acting=Acting.platform("tests"))
    others = [s for s in ("actions:read", "actions:write", "actions:publish", "flows:write") if s != scope]
    token = api_token(*others)
    if method == "get":
        response = client.get(path, headers=bearer(token))
    else:
        response = send_json(client, method, path, token, {"value": "new"})
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": scope}
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE}
    assert getattr(client, method)(path).status_code == 401


@pytest.mark.parametrize(
    ("name", "value", "field", "words"),
    [
        ("crm_key", VALUE, "name", "upper-case letter"),
        ("1KEY", VALUE, "name", "upper-case letter"),
        ("K" * 65, VALUE, "name", "upper-case letter"),
        ("CRM_KEY", "", "value", "must not be empty"),
        ("CRM_KEY", "x" * 4097, "value", "4,097 bytes"),
        ("CRM_KEY", "a\x00b", "value", "NUL"),
    ],
)
def test_a_bad_name_or_value_is_a_422_naming_the_field(
    client: Any, action: Action, api_token: Any, name: str, value: str, field: str, words: str
) -> None:
    response = put(client, api_token("actions:write"), name, {"value": value})
    assert response.status_code == 422
    assert words in error_fields(response)[field]
    assert not ActionSecret.objects.exists()


def test_a_body_without_a_value_is_a_422_naming_it(client: Any, action: Action, api_token: Any) -> None:
    response = put(client, api_token("actions:write"), "CRM_KEY", {"secret": VALUE})
    assert response.status_code == 422 and "value" in error_fields(response)


def test_template_actions_have_no_secrets(client: Any, personas: Any, api_token: Any) -> None:
    template = Action.objects.filter(tenant=personas.tenant_a, kind=ActionKind.TEMPLATE).first()
    assert template is not None
    response = put(client, api_token("actions:write"), "CRM_KEY", {"value": VALUE}, slug=template.slug)
    assert response.status_code == 422
    assert "only custom actions" in error_fields(response)["name"]


def test_unknown_deleted_and_other_tenants_actions_answer_404(client: Any, personas: Any, api_token: Any) -> None:
    from flows_app.deleting import delete_action

    theirs = add_custom_action(personas.tenant_b, "crm-lookup")
    set_secret(theirs, "CRM_KEY", VALUE, acting=Acting.platform("tests"))
    gone = add_custom_action(personas.tenant_a, "gone")
    delete_action(gone, acting=Acting.platform("tests"))
    token = api_token("actions:read", "actions:write")
    for slug in ("crm-lookup", "gone", "no-such-action"):
        base = f"/api/v1/actions/{slug}/secrets"
        assert client.get(base, headers=bearer(token)).status_code == 404, slug
        assert put(client, token, "CRM_KEY", {"value": "mine"}, slug=slug).status_code == 404, slug
        answer = client.delete(f"{base}/CRM_KEY", headers=bearer(token))
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", slug
    assert secrets_for_execution(theirs.pk) == {"CRM_KEY": VALUE}


def test_deleting_a_secret_the_action_does_not_have_is_a_404(client: Any, action: Action, api_token: Any) -> None:
    response = client.delete(f"{URL}/NEVER_SET", headers=bearer(api_token("actions:write")))
    assert response.status_code == 404
    assert "NEVER_SET" in response.json()["error"]["message"]


def test_the_openapi_document_lists_the_endpoints_with_their_scopes(client: Any, personas: Any) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    listing = paths["/api/v1/actions/{slug}/secrets"]["get"]
    one = paths["/api/v1/actions/{slug}/secrets/{name}"]
    assert listing["x-required-scope"] == "actions:read"
    assert one["put"]["x-required-scope"] == one["delete"]["x-required-scope"] == "actions:write"
    assert {"204", "404", "422"} <= set(one["put"]["responses"])
