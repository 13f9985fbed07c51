"""Builders shared by tests and benchmarks: the personas, actions and their versions, audit
histories and API requests. Test modules import builders from here (or from a helper module such as
tests/browser.py), never from another test module or conftest.py (tests/test_suite_layout.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction

from actions_app.models import Action, ActionKind, ActionVersion, content_checksum
from actions_app.sample_inputs import sample_input
from actions_app.versioning import VersionDraft, create_custom_action
from audit_app.models import AuditEvent
from audit_app.services import EventDraft, record_many
from orchestration.founding import create_tenant
from tenants.acting import Acting, Actor, RequestMeta
from tenants.models import Tenant
from tenants.permissions import grant_tenant_roles
from tenants.roles import Role
from tenants.services import add_member

# ---- Personas (STYLE.md): owner, admin, editor and viewer of tenant A ("acme"), and an outsider
# who owns tenant B ("globex") and is no member of A. Founded once per test database
# (conftest.django_db_setup); the `personas` fixture reads them afresh for every test.

PASSWORD = "test-pass-123!"


@dataclass
class Personas:
    tenant_a: Tenant
    tenant_b: Tenant
    owner: Any
    admin: Any
    editor: Any
    viewer: Any
    outsider: Any

    def by_role(self) -> dict[str, Any]:
        return {"owner": self.owner, "admin": self.admin, "editor": self.editor, "viewer": self.viewer}


def make_operator(username: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)


PERSONA_USERNAMES = {"owner": "a-owner", "admin": "a-admin", "editor": "a-editor", "viewer": "a-viewer"}
OUTSIDER_USERNAME = "b-owner"


def found_personas() -> Personas:
    """Create tenants acme and globex and the five personas, as each test used to."""
    system = Acting.platform("tests")
    tenant_a = create_tenant(slug="acme", name="Acme")
    tenant_b = create_tenant(slug="globex", name="Globex")
    users = {}
    for role in (Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER):
        users[role] = make_operator(f"a-{role.value}")
        add_member(tenant_a, users[role], role, acting=system)
    outsider = make_operator(OUTSIDER_USERNAME)
    add_member(tenant_b, outsider, Role.OWNER, acting=system)
    return Personas(
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        owner=users[Role.OWNER],
        admin=users[Role.ADMIN],
        editor=users[Role.EDITOR],
        viewer=users[Role.VIEWER],
        outsider=outsider,
    )


def stored_personas() -> Personas | None:
    """The personas as the database holds them now (new instances every call), or None when they
    are not there (a transactional test's flush removed them)."""
    from django.contrib.auth import get_user_model

    tenants = {tenant.slug: tenant for tenant in Tenant.objects.filter(slug__in=["acme", "globex"])}
    usernames = [*PERSONA_USERNAMES.values(), OUTSIDER_USERNAME]
    users = {user.username: user for user in get_user_model().objects.filter(username__in=usernames)}
    if len(tenants) < 2 or len(users) < len(usernames):
        return None
    return Personas(
        tenant_a=tenants["acme"],
        tenant_b=tenants["globex"],
        **{persona: users[username] for persona, username in PERSONA_USERNAMES.items()},
        outsider=users[OUTSIDER_USERNAME],
    )


def remove_personas() -> None:
    """Delete the personas and everything founding them made, in the caller's transaction (a
    test's, rolled back after it): for tests that need the database as migrations leave it."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from audit_app.models import AuditChainHead, AuditRetention
    from flows_app.models import Binding, Flow

    tenants = list(Tenant.objects.filter(slug__in=["acme", "globex"]))
    # Audit events are append-only; like the retention purge (audit_app.retention), delete them
    # in SQL with the purge flag raised on PostgreSQL for just this statement.
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL actions_console.audit_purge = 'on'")
        for tenant in tenants:
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant.pk])
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL actions_console.audit_purge = 'off'")
    AuditChainHead.objects.filter(tenant__in=tenants).delete()
    AuditRetention.objects.filter(tenant__in=tenants).delete()
    Flow.objects.filter(tenant__in=tenants).update(current_revision=None)
    Binding.objects.filter(revision__flow__tenant__in=tenants).delete()
    Group.objects.filter(tenant_role__tenant__in=tenants).delete()
    Tenant.objects.filter(pk__in=[tenant.pk for tenant in tenants]).delete()
    usernames = [*PERSONA_USERNAMES.values(), OUTSIDER_USERNAME]
    get_user_model().objects.filter(username__in=usernames).delete()


# ---- Actions and their versions --------------------------------------------------------------


def add_custom_action(tenant: Any, slug: str) -> Action:
    action = Action.objects.create(
        tenant=tenant, slug=slug, name=slug.replace("-", " ").title(), kind=ActionKind.CUSTOM
    )
    source = "export async function execute() { return { kind: 'continue' }; }"
    ActionVersion.objects.create(
        action=action,
        **ActionVersion.semver_fields("0.1.0"),
        source=source,
        config_schema={"type": "object", "properties": {}},
        compatible_triggers=["login.post-auth"],
        checksum=content_checksum(source, {}, ["login.post-auth"]),
    )
    grant_tenant_roles(tenant, [action])
    return action


GOOD = """export async function execute(input: ActionInput): Promise<ActionResult> {
  return { kind: "continue" };
}
"""
BAD = """export async function execute(input: ActionInput): Promise<ActionResult> {
  return { kind: "blok" };
}
"""
SCHEMA = {"type": "object", "properties": {"threshold": {"type": "integer"}}, "required": ["threshold"]}
TRIGGERS = ["login.post-auth"]


def draft(source: str = GOOD, schema: Any = None, triggers: list[str] | None = None) -> VersionDraft:
    return VersionDraft(source, SCHEMA if schema is None else schema, triggers or TRIGGERS)


def create(personas: Any, slug: str = "my-action", source: str = GOOD, **kwargs: Any) -> ActionVersion:
    return create_custom_action(
        personas.tenant_a, name="My action", slug=slug, draft=draft(source), **kwargs, acting=acting_as(personas.editor)
    ).version


def bulk_custom_actions(tenant: Any, count: int, prefix: str = "bulk") -> list[Action]:
    """`count` custom actions with one 0.1.0 version each, visible to the tenant's roles."""
    Action.objects.bulk_create(
        Action(tenant=tenant, slug=f"{prefix}-{i:05d}", name=f"{prefix.title()} action {i:05d}", kind=ActionKind.CUSTOM)
        for i in range(count)
    )
    actions = list(Action.objects.filter(tenant=tenant, slug__startswith=f"{prefix}-"))
    ActionVersion.objects.bulk_create(
        ActionVersion(
            action=action,
            **ActionVersion.semver_fields("0.1.0"),
            compatible_triggers=["login.post-auth"],
            checksum=content_checksum("", {}, ["login.post-auth"]),
        )
        for action in actions
    )
    grant_tenant_roles(tenant, actions)
    return actions


def execution_rows(action: Action, flow: Any, count: int, start: Any, **fields: Any) -> list[Any]:
    """`count` recorded executions of `action` in `flow`, one a second from `start` onwards, each
    its own transaction (`tx-00000`, ...), inserted in one statement; `fields` override any column."""
    import uuid
    from datetime import timedelta

    from flows_app.models import ActionExecution

    return ActionExecution.objects.bulk_create(
        ActionExecution(
            **{
                "tenant": action.tenant,
                "flow": flow,
                "revision_number": 1,
                "transaction_id": f"tx-{i:05d}",
                "trigger": "login.post-auth",
                "binding_key": uuid.UUID(int=i),
                "action": action,
                "action_version": "0.1.0",
                "position": 0,
                "outcome": "continue",
                "duration_ms": 1.0,
                "occurred_at": start + timedelta(seconds=i),
                **fields,
            }
        )
        for i in range(count)
    )


def region(html: str, element_id: str, closing: str) -> str:
    """The part of a page from the element with id `element_id` up to the next `closing` tag."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index(closing, start)]


# ---- Requests for the hostile-input tests -------------------------------------------------

CONTINUING_ACTION = """export async function execute(input: ActionInput): Promise<ActionResult> {
  return { kind: "continue" };
}
"""


def web(user: Any) -> Any:
    """A test client signed in as `user` (a console session, as a browser would hold)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def send_json(client: Any, method: str, url: str, token: str, body: Any, **headers: str) -> Any:
    send = getattr(client, method)
    return send(url, data=json.dumps(body), content_type="application/json", headers={**bearer(token), **headers})


def walk_pages(client: Any, url: str, token: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a cursor-paged list, following `next` until it is null."""
    pages: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(url, query, headers=bearer(token))
        assert response.status_code == 200, response.content
        pages.append(response.json())
        cursor = pages[-1]["next"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


def post(client: Any, url: str, token: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=bearer(token))


def new_action(client: Any, token: str, **overrides: Any) -> Any:
    body = {
        "name": "Risk gate",
        "slug": "risk-gate",
        "compatible_triggers": ["login.post-auth"],
        "config_schema": SCHEMA,
        "source": GOOD,
        **overrides,
    }
    return post(client, "/api/v1/actions", token, body)


def run_login(client: Any, token: str, slug: str = "login", **overrides: Any) -> Any:
    body = {
        "trigger": "login.post-auth",
        "user": {"id": "u1", "email": "jane@example.com", "email_verified": True, "groups": []},
        "request": {"ip": "203.0.113.9", "user_agent": "curl", "hostname": "login.example.com"},
        "context": {"risk": {"score": 80}},
        **overrides,
    }
    return client.post(
        f"/api/v1/flows/{slug}/run", data=json.dumps(body), content_type="application/json", headers=bearer(token)
    )


def nested(depth: int) -> dict[str, Any]:
    """A JSON object `depth` objects deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def error_fields(response: Any) -> dict[str, str]:
    return {detail["field"]: detail["message"] for detail in response.json()["error"]["details"]}


def editor_post(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Hostile",
        "slug": "",
        "source": CONTINUING_ACTION,
        "compatible_triggers": ["login.post-auth"],
        "config_schema": json.dumps({"type": "object", "properties": {}}),
        "bump": "patch",
        "version": "",
        "base_version": "",
        "harness_input": json.dumps(sample_input("login.post-auth")),
        "harness_target": "draft",
        **overrides,
    }


# ---- Audit histories --------------------------------------------------------------------

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("user", "41", "alice")
DEPLOYER = Actor("token", "k7xq", "deploy bot")


def add_events(tenant: Any, count: int, start: datetime = T0, **fields: Any) -> list[AuditEvent]:
    drafts = [
        EventDraft(
            tenant=tenant,
            event_type=fields.get("event_type", "action.version_saved"),
            actor=fields.get("actor", ALICE),
            action_slug=fields.get("action_slug", f"act-{i}"),
            occurred_at=start + timedelta(seconds=i),
            **{k: v for k, v in fields.items() if k not in ("event_type", "actor", "action_slug")},
        )
        for i in range(count)
    ]
    with transaction.atomic():
        return record_many(drafts)


def build_story(personas: Any) -> dict[str, AuditEvent]:
    """A small, varied history in tenant A (plus the personas' own member.added events)."""
    a = personas.tenant_a
    meta = RequestMeta(ip="203.0.113.9", user_agent="curl/8", request_id="req-abc123")
    drafts = {
        "saved": EventDraft(
            a,
            "action.version_saved",
            ALICE,
            meta,
            action_slug="geo-block",
            action_version="0.2.0",
            before={"source": "v1"},
            after={"source": "v2"},
            occurred_at=T0,
        ),
        "updated": EventDraft(
            a,
            "flow.action_updated",
            ALICE,
            meta,
            action_slug="geo-block",
            flow_slug="login",
            flow_revision=7,
            trigger="login.post-auth",
            before={"config": {"countries": ["FR"], "api_key": "••••"}, "enabled": True},
            after={"config": {"countries": ["FR", "DE"], "api_key": "••••"}, "order": 2},
            occurred_at=T0 + timedelta(minutes=1),
        ),
        "blocked": EventDraft(
            a,
            "flow.action_executed",
            Actor.system("engine"),
            action_slug="geo-block",
            action_version="0.2.0",
            flow_slug="login",
            flow_revision=7,
            trigger="login.post-auth",
            transaction_id="tx-blocked-1",
            after={"outcome": "block", "duration_ms": 1.5},
            occurred_at=T0 + timedelta(minutes=2),
        ),
        "continued": EventDraft(
            a,
            "flow.action_executed",
            Actor.system("engine"),
            action_slug="geo-block",
            action_version="0.2.0",
            flow_slug="signup",
            flow_revision=2,
            trigger="registration.pre-create",
            transaction_id="tx-ok-2",
            after={"outcome": "continue", "duration_ms": 0.9},
            occurred_at=T0 + timedelta(minutes=3),
        ),
        "token": EventDraft(
            a,
            "api_token.created",
            DEPLOYER,
            target="=HYPERLINK(evil)",
            after={"scopes": ["audit:read"]},
            occurred_at=T0 + timedelta(minutes=4),
        ),
    }
    with transaction.atomic():
        rows = record_many(list(drafts.values()))
    return dict(zip(drafts, rows, strict=True))


def acting_as(user: Any, tenant: Any = None, *, role: Any = None) -> Any:
    """The acting context of `user` as an operator outside a request: with `tenant`, holding the
    role they have there; otherwise `role` (None: no role to check, as the platform's own writes)."""
    from tenants.acting import Acting
    from tenants.models import Membership

    if tenant is not None:
        membership = Membership.objects.filter(tenant=tenant, user=user).first()
        role = membership.role_enum if membership else None
    return Acting.as_operator(user, role)
