from __future__ import annotations

from typing import Any

from tenants.acting import Acting
from tenants.models import ApiToken
from tenants.services import revoke_api_token
from tests.factories import acting_as, add_custom_action, bearer, walk_pages

URL = "/api/v1/actions"


def test_it_lists_the_tenants_actions(client: Any, personas: Any, api_token: Any) -> None:
    add_custom_action(personas.tenant_a, "mine")
    add_custom_action(personas.tenant_b, "theirs")
    response = client.get(URL, headers=bearer(api_token("actions:read")))
    assert response.status_code == 200
    items = {item["slug"]: item for item in response.json()["items"]}
    assert "theirs" not in items
    assert len(items) == 11
    assert items["rate-limit-by-ip"] == {
        "slug": "rate-limit-by-ip",
        "name": "Rate limit by IP",
        "kind": "template",
        "compatible_triggers": ["login.pre-credential-check", "registration.pre-create", "password-reset.requested"],
        "attached": 0,
        "latest_version": "1.1.0",
        "published_versions": ["1.1.0", "1.0.0"],
    }
    assert items["mine"]["kind"] == "custom"
    assert items["mine"]["published_versions"] == []


def test_it_filters_like_the_page(client: Any, personas: Any, api_token: Any) -> None:
    response = client.get(URL, {"trigger": "login.pre-token"}, headers=bearer(api_token("actions:read")))
    assert [i["slug"] for i in response.json()["items"]] == ["decorate-token", "slack-notify", "webhook-emit"]


def test_it_needs_a_token(client: Any, personas: Any) -> None:
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert client.get(URL, headers=bearer("acx_nope_nope")).status_code == 401
    assert client.get(URL, headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_revoked_or_expired_token_is_refused(client: Any, personas: Any, api_token: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    secret = api_token("actions:read")
    assert client.get(URL, headers=bearer(secret)).status_code == 200
    token = ApiToken.objects.get(key_id=secret.split("_")[1])
    assert token.last_used_at is not None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(URL, headers=bearer(secret)).status_code == 401
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
    revoke_api_token(token, acting=Acting.platform("tests"))
    assert client.get(URL, headers=bearer(secret)).status_code == 401


def test_a_missing_scope_is_named(client: Any, personas: Any, api_token: Any) -> None:
    response = client.get(URL, headers=bearer(api_token("flows:read")))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "missing_scope"
    assert "actions:read" in error["message"]


def test_only_a_hash_of_the_token_is_stored(personas: Any, api_token: Any) -> None:
    secret = api_token("actions:read")
    token = ApiToken.objects.get(key_id=secret.split("_")[1])
    assert secret.split("_", 2)[2] not in token.secret_hash
    assert len(token.secret_hash) == 64


def test_the_openapi_document_is_served(client: Any, db: None) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert "/api/v1/actions" in document["paths"]
    assert document["components"]["securitySchemes"]


def test_token_creation_and_revocation_are_audited(personas: Any, api_token: Any) -> None:
    from audit_app.models import AuditEvent

    secret = api_token("actions:read", "flows:read")
    token = ApiToken.objects.get(key_id=secret.split("_")[1])
    revoke_api_token(token, acting=acting_as(personas.admin))
    events = list(AuditEvent.objects.filter(tenant=personas.tenant_a, type__startswith="api_token.").order_by("id"))
    assert [e.type for e in events] == ["api_token.created", "api_token.revoked"]
    assert events[0].after is not None
    assert events[0].after["scopes"] == ["actions:read", "flows:read"]
    assert secret not in str(events[0].after)
    assert events[1].actor_name == "a-admin"


def test_whoami_tells_the_tokens_tenant_and_scopes(client: Any, personas: Any, api_token: Any) -> None:
    response = client.get("/api/v1/whoami", headers=bearer(api_token("flows:read", "actions:read")))
    assert response.json() == {"tenant": "acme", "token": "test token", "scopes": ["actions:read", "flows:read"]}
    assert client.get("/api/v1/whoami").status_code == 401


def test_the_list_pages_by_cursor_in_name_order(client: Any, personas: Any, api_token: Any) -> None:
    from actions_app.models import Action
    from tests.factories import bulk_custom_actions

    bulk_custom_actions(personas.tenant_a, 25)
    # Two actions with one name: the slug breaks the tie, so neither is skipped nor repeated.
    for slug in ("twin-b", "twin-a"):
        add_custom_action(personas.tenant_a, slug)
        Action.objects.filter(slug=slug).update(name="Twin")
    token = api_token("actions:read")
    everything = client.get(URL, {"limit": 500}, headers=bearer(token)).json()
    assert everything["next"] is None
    pages = walk_pages(client, URL, token, limit=7)
    assert [len(p["items"]) for p in pages] == [7, 7, 7, 7, 7, 2]
    walked = [item["slug"] for page in pages for item in page["items"]]
    assert walked == [item["slug"] for item in everything["items"]]
    assert len(walked) == len(set(walked)) == 25 + 2 + 10
    assert walked.index("twin-a") + 1 == walked.index("twin-b")


def test_the_cursor_keeps_the_filters(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:read")
    pages = walk_pages(client, URL, token, limit=2, trigger="login.pre-token")
    assert [i["slug"] for p in pages for i in p["items"]] == ["decorate-token", "slack-notify", "webhook-emit"]


def test_a_bad_cursor_limit_or_filter_is_refused_naming_it(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:read", "flows:read")
    flows_cursor = client.get("/api/v1/flows", {"limit": 1}, headers=bearer(token)).json()["next"]
    for params, status, field in [
        ({"cursor": "garbage"}, 400, "cursor"),
        ({"cursor": flows_cursor}, 400, "cursor"),
        ({"limit": 0}, 400, "limit"),
        ({"kind": "plugin"}, 422, "kind"),
        ({"trigger": "login.nowhere"}, 422, "trigger"),
    ]:
        response = client.get(URL, params, headers=bearer(token))
        assert response.status_code == status, params
        assert response.json()["error"]["details"][0]["field"] == field, params
