"""Walk every URL pattern with every persona and fail on any leak across tenants or roles.

A new URL pattern with a parameter this walk does not know makes the walk fail, so nobody can
add a page without also proving its tenant and permission checks.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from actions_app.secrets import set_secret
from tenants.acting import Acting
from tests.factories import add_custom_action

# An invitation link's pages: outside any tenant, open to whoever holds the link (the invitee is
# no member yet), so the secret in the URL is their only key (test_invitation_links_...).
INVITATION_ROUTES = {
    "invitations/<slug:invitation_token>/",
    "invitations/<slug:invitation_token>/accept/",
    "invitations/<slug:invitation_token>/sign-up/",
}
# Pages that do not belong to a tenant, and what an anonymous visitor gets there.
PUBLIC_ROUTES = {"accounts/login/", "accounts/logout/", *INVITATION_ROUTES}
NON_TENANT_ROUTES = {"", *PUBLIC_ROUTES}
# Platform pages for staff only: a 404 to every operator, whatever their roles in tenants.
STAFF_ROUTES = {"platform/security-log/"}


def _walk(patterns: list[Any], prefix: str = "") -> list[str]:
    routes = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            routes += _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            routes.append(prefix + str(entry.pattern))
    return routes


def page_routes() -> list[str]:
    return [r for r in _walk(get_resolver().url_patterns) if not r.startswith("api/")]


class _LatestEventIdOf(str):
    """A sample audit event id that depends on the tenant in the URL: the newest event of that
    tenant (ids are global, so no one literal id exists in both tenants). Outside the database
    (route listing only) or for a tenant without events, an id that matches nothing."""

    def format(self, *args: object, **kwargs: object) -> str:
        from audit_app.models import AuditEvent

        tenant = str(kwargs.get("tenant", ""))
        try:
            latest = AuditEvent.objects.filter(tenant__slug=tenant).order_by("-id").first()
        except RuntimeError:  # pytest-django refuses database access in tests without `db`
            latest = None
        return str(latest.pk) if latest else "999999999"


class _LatestExecutionIdOf(str):
    """Like `_LatestEventIdOf`, for the newest action execution of the tenant in the URL."""

    def format(self, *args: object, **kwargs: object) -> str:
        from flows_app.models import ActionExecution

        tenant = str(kwargs.get("tenant", ""))
        try:
            latest = ActionExecution.objects.filter(tenant__slug=tenant).order_by("-id").first()
        except RuntimeError:
            latest = None
        return str(latest.pk) if latest else "999999999"


class _LatestInvitationIdOf(str):
    """Like `_LatestEventIdOf`, for the newest invitation of the tenant in the URL."""

    def format(self, *args: object, **kwargs: object) -> str:
        from tenants.models import Invitation

        tenant = str(kwargs.get("tenant", ""))
        try:
            latest = Invitation.objects.filter(tenant__slug=tenant).order_by("-id").first()
        except RuntimeError:
            latest = None
        return str(latest.pk) if latest else "999999999"


WALK_TRANSACTION_ID = "walk-transaction"
# The secret of each tenant's walk invitation (to WALK_INVITEE); sent to no one.
WALK_INVITATION_TOKEN = "walk-invitation-{tenant}-0123456789abcdefghijklmnopq"
WALK_INVITEE = "walk-invitee@example.com"
SAMPLE_VALUES = {
    "tenant_slug": "{tenant}",
    "event_id": _LatestEventIdOf("{tenant}"),
    "action_slug": "secret-action",
    "flow_slug": "login",
    "target_slug": "login-staging",
    "revision_number": "1",
    "version_label": "0.1.0",
    "binding_key": "0000000000000000000000000000beef",
    "execution_id": _LatestExecutionIdOf("{tenant}"),
    "transaction_id": WALK_TRANSACTION_ID,
    "token_key_id": "walk-{tenant}",
    "member_username": "a-viewer",
    "invitation_id": _LatestInvitationIdOf("{tenant}"),
    "invitation_token": WALK_INVITATION_TOKEN,
    "secret_name": "WALK_SECRET",
}
WALK_BINDING_KEY = uuid.UUID("0000000000000000000000000000beef")
# Routes that only accept POST, and the lowest role allowed to use them.
POST_ONLY = {
    "t/<slug:tenant_slug>/actions/new/test/": "editor",
    "t/<slug:tenant_slug>/actions/schema-preview/": "editor",
    "t/<slug:tenant_slug>/actions/sdk-types/": "viewer",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/save/": "editor",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/secrets/": "editor",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/test/": "editor",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/versions/<str:version_label>/publish/": "admin",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/versions/<str:version_label>/restore/": "editor",
    "t/<slug:tenant_slug>/flows/<slug:flow_slug>/enabled/": "editor",
    "t/<slug:tenant_slug>/flows/<slug:flow_slug>/try/": "editor",
    "t/<slug:tenant_slug>/settings/tokens/": "admin",
    "t/<slug:tenant_slug>/settings/tokens/<slug:token_key_id>/revoke/": "admin",
    "t/<slug:tenant_slug>/settings/invitations/": "admin",
    "t/<slug:tenant_slug>/settings/invitations/<str:invitation_id>/revoke/": "admin",
    "t/<slug:tenant_slug>/settings/members/<str:member_username>/role/": "admin",
    "t/<slug:tenant_slug>/settings/members/<str:member_username>/remove/": "admin",
}
# Form pages that create something: viewers may not even open them (403); editors open and post.
CREATE_FORMS = {
    "t/<slug:tenant_slug>/flows/<slug:flow_slug>/duplicate/": "editor",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/attach/": "editor",
}
ROLE_ORDER = ["viewer", "editor", "admin", "owner"]
# Routes every member may read (GET) that change something by POST, and the lowest role allowed to POST.
GET_AND_POST = {
    # Before the deletes below, which take the walk's action away.
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/secrets/<str:secret_name>/delete/": "editor",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/runs/<str:execution_id>/replay/": "editor",
    "t/<slug:tenant_slug>/audit/retention/": "owner",
    "t/<slug:tenant_slug>/actions/<slug:action_slug>/delete/": "owner",
    "t/<slug:tenant_slug>/flows/<slug:flow_slug>/delete/": "owner",
    "t/<slug:tenant_slug>/flows/<slug:flow_slug>/revisions/<int:revision_number>/restore/": "editor",
    "t/<slug:tenant_slug>/flows/<slug:flow_slug>/promote/<slug:target_slug>/": "editor",
}


def fill(route: str, tenant_slug: str) -> str:
    url = "/" + route
    for name, value in SAMPLE_VALUES.items():
        for converter in ("slug", "str", "int", "path"):
            url = url.replace(f"<{converter}:{name}>", value.format(tenant=tenant_slug))
    assert "<" not in url, f"{route}: add a sample value for its parameters to SAMPLE_VALUES"
    return url


@pytest.fixture
def both_tenants_have_objects(personas: Any) -> Any:
    from flows_app.models import ActionExecution
    from flows_app.services import BindingSpec, create_flow
    from tenants.models import ApiToken, Invitation, hash_token_secret
    from tests.flow_helpers import attach

    hook = {"url": "https://hooks.example.com/in", "secret": "walk-secret-0123456789"}
    for tenant in (personas.tenant_a, personas.tenant_b):
        action = add_custom_action(tenant, "secret-action")
        set_secret(action, "WALK_SECRET", "walk-secret-value", acting=Acting.platform("tests"))
        flow = attach(tenant, "login.post-auth", BindingSpec("webhook-emit", "1.0.0", hook, key=WALK_BINDING_KEY))
        # A second login flow: what the promote pages promote into.
        create_flow(tenant, name="Login staging", slug="login-staging", kind="login", acting=Acting.platform("tests"))
        ActionExecution.objects.create(
            tenant=tenant,
            flow=flow,
            revision_number=1,
            transaction_id=WALK_TRANSACTION_ID,
            trigger="login.post-auth",
            binding_key=WALK_BINDING_KEY,
            action=action,
            action_version="0.1.0",
            position=0,
            outcome="continue",
            duration_ms=1.0,
        )
        ApiToken.objects.create(tenant=tenant, name="walk token", key_id=f"walk-{tenant.slug}", scopes=["actions:read"])
        Invitation.objects.create(
            tenant=tenant,
            email=WALK_INVITEE,
            role="viewer",
            token_hash=hash_token_secret(WALK_INVITATION_TOKEN.format(tenant=tenant.slug)),
            expires_at=timezone.now() + timedelta(days=7),
        )
    return personas


def test_it_knows_every_route() -> None:
    routes = page_routes()
    assert "t/<slug:tenant_slug>/actions/" in routes
    for route in routes:
        fill(route, "acme")


def test_it_answers_404_to_outsiders_on_every_tenant_page(client: Any, both_tenants_have_objects: Any) -> None:
    personas = both_tenants_have_objects
    client.force_login(personas.outsider)
    tenant_routes = [r for r in page_routes() if r.startswith("t/")]
    assert tenant_routes
    for route in tenant_routes:
        for method in ("get", "post"):
            response = getattr(client, method)(fill(route, "acme"))
            assert response.status_code == 404, f"{method.upper()} {route} leaked to an outsider"
            assert b"secret-action" not in response.content
    # ...while the same pages of their own tenant answer.
    for route in tenant_routes:
        expected = 405 if route in POST_ONLY else 200
        assert client.get(fill(route, "globex"), follow=True).status_code == expected, route


def test_it_answers_404_for_a_tenant_that_does_not_exist(client: Any, personas: Any) -> None:
    client.force_login(personas.owner)
    for route in [r for r in page_routes() if r.startswith("t/")]:
        assert client.get(fill(route, "no-such-tenant")).status_code == 404, route


@pytest.mark.parametrize("role", ["owner", "admin", "editor", "viewer"])
def test_it_lets_every_member_read_every_page(client: Any, both_tenants_have_objects: Any, role: str) -> None:
    personas = both_tenants_have_objects
    client.force_login(personas.by_role()[role])
    for route in [r for r in page_routes() if r.startswith("t/")]:
        response = client.get(fill(route, "acme"), follow=True)
        expected = 405 if route in POST_ONLY else 200
        creates = ("t/<slug:tenant_slug>/actions/new/", "t/<slug:tenant_slug>/flows/new/", *CREATE_FORMS)
        if route in creates and role == "viewer":
            expected = 403  # visible tenant, but viewers may not create
        assert response.status_code == expected, f"{role} GET {route}"
        # and never the other tenant's pages
        assert client.get(fill(route, "globex")).status_code == 404, f"{role} saw globex {route}"


@pytest.mark.parametrize("role", ROLE_ORDER)
@pytest.mark.parametrize("table", ["POST_ONLY", "GET_AND_POST", "CREATE_FORMS"])
def test_posts_answer_403_below_the_routes_role(
    client: Any, both_tenants_have_objects: Any, role: str, table: str
) -> None:
    personas = both_tenants_have_objects
    client.force_login(personas.by_role()[role])
    lowest_roles: dict[str, str] = {"POST_ONLY": POST_ONLY, "GET_AND_POST": GET_AND_POST, "CREATE_FORMS": CREATE_FORMS}[
        table
    ]
    assert set(lowest_roles) <= set(page_routes()), f"{table} lists a route that no longer exists"
    for route, lowest in lowest_roles.items():
        response = client.post(fill(route, "acme"))
        allowed = ROLE_ORDER.index(role) >= ROLE_ORDER.index(lowest)
        if allowed:
            assert response.status_code not in (403, 404, 405), f"{role} POST {route}: {response.status_code}"
        else:
            assert response.status_code == 403, f"{role} POST {route}: {response.status_code}"


def test_it_sends_anonymous_visitors_to_sign_in(client: Any, both_tenants_have_objects: Any) -> None:
    for route in page_routes():
        if route in PUBLIC_ROUTES:
            continue
        response = client.get(fill(route, "acme"))
        assert response.status_code == 302, route
        assert response["Location"].startswith("/accounts/login/"), route


def test_it_treats_platform_superusers_as_outsiders(client: Any, both_tenants_have_objects: Any) -> None:
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("staff", "staff@example.com", "x-pass-123!")
    client.force_login(staff)
    for route in [r for r in page_routes() if r.startswith("t/")]:
        assert client.get(fill(route, "acme")).status_code == 404, route


def test_staff_routes_answer_404_to_every_operator_and_open_to_staff(
    client: Any, both_tenants_have_objects: Any
) -> None:
    from django.contrib.auth import get_user_model

    personas = both_tenants_have_objects
    assert set(page_routes()) >= STAFF_ROUTES, "STAFF_ROUTES lists a route that no longer exists"
    for user in [*personas.by_role().values(), personas.outsider]:
        client.force_login(user)
        for route in STAFF_ROUTES:
            for method in ("get", "post"):
                status = getattr(client, method)(fill(route, "acme")).status_code
                assert status == 404, f"{user} {method.upper()} {route}: {status}"
    staff = get_user_model().objects.create_user("staff", "staff@example.com", "x-pass-123!", is_staff=True)
    client.force_login(staff)
    for route in STAFF_ROUTES:
        assert client.get(fill(route, "acme")).status_code == 200, route


def test_invitation_links_answer_by_the_link_alone(client: Any, both_tenants_have_objects: Any) -> None:
    """Every visitor, signed in or not and whatever their tenants, gets one 404 page from a link
    that names no pending invitation; a live link shows its invitation to anyone (that is what a
    link is) but lets no one without the invited address join, and shows nothing else of the tenant."""
    from tenants.models import Membership

    personas = both_tenants_have_objects
    assert set(page_routes()) >= INVITATION_ROUTES, "INVITATION_ROUTES lists a route that no longer exists"
    visitors = [None, *personas.by_role().values(), personas.outsider]
    dead_pages = set()
    for visitor in visitors:
        client.logout()
        if visitor is not None:
            client.force_login(visitor)
        for route in INVITATION_ROUTES:
            for method in ("get", "post"):
                dead = getattr(client, method)("/" + route.replace("<slug:invitation_token>", "no-such-invitation-x"))
                assert dead.status_code == 404, f"{visitor} {method.upper()} {route}"
                main = dead.content.decode().split('<main id="main"', 1)[1]
                dead_pages.add(re.sub(r'value="[A-Za-z0-9]{64}"', "", main))
                live = getattr(client, method)(fill(route, "acme"))
                assert live.status_code in (200, 302, 403, 405), f"{visitor} {method.upper()} {route}"
                assert b"secret-action" not in live.content and b"walk token" not in live.content
    assert len(dead_pages) == 1
    members = Membership.objects.filter(tenant=personas.tenant_a)
    assert members.count() == 4 and not members.filter(user__email=WALK_INVITEE).exists()
