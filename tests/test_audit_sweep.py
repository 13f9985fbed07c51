"""Every write of contract §7 records exactly one audit event with every required field.

Each test performs one operation through the entry point an operator uses (a web form POST or
an API call) and then reads back the events that appeared: exactly the expected ones, each with
id, UTC time, tenant, type, actor, subject, before/after with secrets masked, the request's
address, user agent and request id, and the transaction id for executions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Max
from django.test import Client
from django.utils import timezone

from audit_app.models import EVENT_TYPES, AuditEvent
from flows_app.models import ActionExecution
from flows_app.run_records import settle_pending
from flows_app.services import BindingSpec
from tenants.models import ApiToken, Membership
from tenants.roles import Role
from tenants.services import add_member, create_api_token
from tests.editor_form import add, editor, press
from tests.factories import make_operator
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of

# The operations of contract §7's table; each has a test below.
CONTRACT_EVENT_TYPES = [
    "flow.action_attached",
    "flow.action_detached",
    "flow.action_updated",
    "flow.action_executed",
    "flow.action_published",
    "action.created",
    "action.version_saved",
    "api_token.created",
    "api_token.revoked",
    "member.added",
    "member.role_changed",
    "member.removed",
    # Contract §11.
    "action.secret_set",
    "action.secret_deleted",
]
# The other event types, and where each operation is checked to record it.
TESTED_ELSEWHERE = {
    "flow.created": "test_flows_list",
    "flow.enabled": "test_flows_list",
    "flow.disabled": "test_flows_list",
    "action.deleted": "test_deleting",
    "flow.deleted": "test_deleting",
    "audit.retention_changed": "test_audit_retention",
    "audit.purged": "test_audit_retention",
    "member.invited": "test_invitations",
    "member.invitation_revoked": "test_invitations",
}
MASK = "••••••"
USER_AGENT = "sweep-test/1.0 (audit)"
REQUEST_ID = "sweep-request-0001"
POST_AUTH = "login.post-auth"
API_KEY = "sk-live-first-0123456789"
OTHER_API_KEY = "sk-live-second-987654321"
WEBHOOK_SECRET = "whsec-never-shown-0123456789"
GATE_SCHEMA = {
    "type": "object",
    "properties": {
        "api_key": {"type": "string", "title": "API key", "writeOnly": True},
        "label": {"type": "string", "title": "Label"},
    },
}
GATE_SOURCE = 'return { kind: "continue", state: { gate: input.context.config.label ?? "none" } };'
NEW_ACTION_SOURCE = (
    "export async function execute(input: ActionInput): Promise<ActionResult> {\n"
    '  return { kind: "continue", claims: { "https://acme.example/plan": "gold" } };\n'
    "}\n"
)


@dataclass
class Sweep:
    personas: Any
    web: Client  # signed in as the admin of tenant A, who may do every operation
    api: Client
    token: str
    token_row: ApiToken

    @property
    def web_actor(self) -> tuple[str, str, str]:
        return ("user", str(self.personas.admin.pk), self.personas.admin.get_username())

    @property
    def api_actor(self) -> tuple[str, str, str]:
        return ("token", self.token_row.key_id, self.token_row.name)

    def post(self, url: str, data: dict[str, Any]) -> Any:
        return self.web.post(url, data)

    def call(self, method: str, url: str, body: Any, **headers: str) -> Any:
        return getattr(self.api, method)(
            url,
            json.dumps(body),
            content_type="application/json",
            headers={"authorization": f"Bearer {self.token}", "user-agent": USER_AGENT, "x-request-id": REQUEST_ID}
            | headers,
        )

    def put_slot(self, bindings: list[dict[str, Any]]) -> Any:
        revision = flow_of(self.personas.tenant_a).current_revision
        assert revision is not None
        url = f"/api/v1/flows/login/slots/{POST_AUTH}"
        response = self.call("put", url, {"bindings": bindings}, **{"if-match": str(revision.number)})
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture
def sweep(personas: Any, api_token: Any) -> Sweep:
    custom_action(personas.tenant_a, "geo-gate", GATE_SOURCE, [POST_AUTH], schema=GATE_SCHEMA)
    secret = api_token(
        "actions:read", "actions:write", "actions:publish", "flows:read", "flows:write", "runtime:execute"
    )
    # Every request of the sweep carries a known user agent and request id, to find them on the events.
    web = Client(headers={"user-agent": USER_AGENT, "x-request-id": REQUEST_ID})
    web.force_login(personas.admin)
    return Sweep(personas, web, Client(), secret, ApiToken.objects.get(key_id=secret.split("_")[1]))


@contextmanager
def new_events() -> Iterator[list[AuditEvent]]:
    """Collects the events written inside the block, oldest first, once flow runs' pending
    records are settled (as the background worker or any reader would)."""
    last = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0
    appeared: list[AuditEvent] = []
    yield appeared
    while settle_pending():
        pass
    appeared.extend(AuditEvent.objects.filter(id__gt=last).order_by("id"))


def only(events: list[AuditEvent], event_type: str, *, also: tuple[str, ...] = (), count: int = 1) -> list[AuditEvent]:
    """The `count` events of `event_type`, after checking nothing else but `also` appeared."""
    assert sorted(e.type for e in events) == sorted([event_type] * count + list(also))
    return [e for e in events if e.type == event_type]


def assert_recorded(
    event: AuditEvent,
    sweep: Sweep,
    actor: tuple[str, str, str],
    *,
    secrets: tuple[str, ...] = (),
    **subject: Any,
) -> None:
    """The fields every event carries (contract §7), the subject given, the request's metadata,
    and no secret in before/after."""
    assert isinstance(event.pk, int) and event.pk > 0
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert timezone.now() - timedelta(minutes=1) < event.occurred_at <= timezone.now()
    assert event.tenant_id == sweep.personas.tenant_a.pk
    assert (event.actor_kind, event.actor_id, event.actor_name) == actor
    for name, value in subject.items():
        assert getattr(event, name) == value, name
    assert (event.ip, event.user_agent, event.request_id) == ("127.0.0.1", USER_AGENT, REQUEST_ID)
    written = json.dumps([event.before, event.after], ensure_ascii=False)
    for secret in secrets:
        assert secret not in written


def doc(snapshot: Any) -> dict[str, Any]:
    """An event's before or after, which must be a JSON object here."""
    assert isinstance(snapshot, dict), snapshot
    return snapshot


def current_revision_number(sweep: Sweep) -> int:
    revision = flow_of(sweep.personas.tenant_a).current_revision
    assert revision is not None
    return revision.number


def test_the_sweep_covers_every_type_of_the_contract() -> None:
    swept = {name.removeprefix("test_").split("__")[0] for name in globals() if name.startswith("test_")}
    for event_type in CONTRACT_EVENT_TYPES:
        assert event_type.replace(".", "_") in swept, f"no sweep test for {event_type}"
    # A new event type gets a sweep test or a line in TESTED_ELSEWHERE, not silence.
    assert set(EVENT_TYPES) == set(CONTRACT_EVENT_TYPES) | set(TESTED_ELSEWHERE)


# --- Catalogue: web forms, as an editor or admin uses them ---


def test_action_created__by_the_new_action_form(sweep: Sweep) -> None:
    form = {
        "name": "Plan claim",
        "slug": "plan-claim",
        "source": NEW_ACTION_SOURCE,
        "compatible_triggers": ["login.pre-token"],
        "config_schema": json.dumps(GATE_SCHEMA),
        "bump": "patch",
    }
    with new_events() as events:
        response = sweep.post("/t/acme/actions/new/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    # Creating an action also saves its first version: that event belongs to the same change.
    (created,) = only(events, "action.created", also=("action.version_saved",))
    assert_recorded(created, sweep, sweep.web_actor, action_slug="plan-claim", action_version="0.1.0")
    assert created.before is None
    assert created.after == {"name": "Plan claim", "slug": "plan-claim", "kind": "custom"}
    (first_version,) = [e for e in events if e.type == "action.version_saved"]
    assert_recorded(first_version, sweep, sweep.web_actor, action_slug="plan-claim", action_version="0.1.0")


def _gate_body(fallback_label: str) -> str:
    source = GATE_SOURCE.replace('"none"', f'"{fallback_label}"')
    return f"export async function execute(input: ActionInput): Promise<ActionResult> {{\n{source}\n}}\n"


def test_action_version_saved__by_the_editor(sweep: Sweep) -> None:
    form = {
        "source": _gate_body("unlabelled"),
        "compatible_triggers": [POST_AUTH],
        "config_schema": json.dumps(GATE_SCHEMA),
        "bump": "minor",
        "base_version": "0.1.0",
    }
    with new_events() as events:
        response = sweep.post("/t/acme/actions/geo-gate/save/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    (saved,) = only(events, "action.version_saved")
    assert_recorded(saved, sweep, sweep.web_actor, action_slug="geo-gate", action_version="0.2.0")
    assert doc(saved.before)["version"] == "0.1.0" and doc(saved.after)["version"] == "0.2.0"
    assert doc(saved.before)["checksum"] != doc(saved.after)["checksum"]
    assert doc(saved.after)["status"] == "draft"


def test_flow_action_published__by_the_publish_button(sweep: Sweep) -> None:
    form = {
        "source": _gate_body("unlabelled"),
        "compatible_triggers": [POST_AUTH],
        "config_schema": json.dumps(GATE_SCHEMA),
        "bump": "patch",
        "base_version": "0.1.0",
    }
    assert sweep.post("/t/acme/actions/geo-gate/save/", form).status_code == 302
    with new_events() as events:
        response = sweep.post("/t/acme/actions/geo-gate/versions/0.1.1/publish/", {})
    assert response.status_code == 302
    (published,) = only(events, "flow.action_published")
    assert_recorded(published, sweep, sweep.web_actor, action_slug="geo-gate", action_version="0.1.1")
    assert (doc(published.before)["status"], doc(published.after)["status"]) == ("draft", "published")


def test_action_created__by_the_api(sweep: Sweep) -> None:
    body = {
        "name": "Plan claim",
        "slug": "plan-claim",
        "compatible_triggers": ["login.pre-token"],
        "config_schema": GATE_SCHEMA,
        "source": NEW_ACTION_SOURCE,
    }
    with new_events() as events:
        response = sweep.call("post", "/api/v1/actions", body)
    assert response.status_code == 201, response.content
    (created,) = only(events, "action.created", also=("action.version_saved",))
    assert_recorded(created, sweep, sweep.api_actor, action_slug="plan-claim", action_version="0.1.0")
    assert created.after == {"name": "Plan claim", "slug": "plan-claim", "kind": "custom"}


def test_action_version_saved__by_the_api(sweep: Sweep) -> None:
    body = {"source": _gate_body("api"), "bump": "major"}
    with new_events() as events:
        response = sweep.call("post", "/api/v1/actions/geo-gate/versions", body)
    assert response.status_code == 201, response.content
    (saved,) = only(events, "action.version_saved")
    assert_recorded(saved, sweep, sweep.api_actor, action_slug="geo-gate", action_version="1.0.0")
    assert (doc(saved.before)["version"], doc(saved.after)["version"]) == ("0.1.0", "1.0.0")


def test_flow_action_published__by_the_api(sweep: Sweep) -> None:
    assert sweep.call("post", "/api/v1/actions/geo-gate/versions", {"source": _gate_body("api")}).status_code == 201
    with new_events() as events:
        response = sweep.call("post", "/api/v1/actions/geo-gate/versions/0.1.1/publish", {})
    assert response.status_code == 200, response.content
    (published,) = only(events, "flow.action_published")
    assert_recorded(published, sweep, sweep.api_actor, action_slug="geo-gate", action_version="0.1.1")
    assert doc(published.after)["status"] == "published"


# --- Flows: the management API, as a deployment pipeline changes them ---


def test_flow_action_attached__by_put_slot(sweep: Sweep) -> None:
    with new_events() as events:
        flow = sweep.put_slot(
            [
                {"action": "geo-gate", "version": "0.1.0", "config": {"api_key": API_KEY, "label": "eu"}},
            ]
        )
    (attached,) = only(events, "flow.action_attached")
    assert_recorded(
        attached,
        sweep,
        sweep.api_actor,
        secrets=(API_KEY,),
        action_slug="geo-gate",
        action_version="0.1.0",
        flow_slug="login",
        flow_revision=flow["revision"],
        trigger=POST_AUTH,
    )
    assert attached.before is None
    assert doc(attached.after)["config"] == {"api_key": MASK, "label": "eu"}
    assert (doc(attached.after)["position"], doc(attached.after)["enabled"], doc(attached.after)["on_error"]) == (
        0,
        True,
        "block",
    )


def test_flow_action_attached__in_the_flow_editor(sweep: Sweep) -> None:
    page, uid = add(sweep.web, editor(sweep.web), POST_AUTH, "webhook-emit")
    typed = {f"b-{uid}-config-url": "https://hooks.example.com/in", f"b-{uid}-config-secret": WEBHOOK_SECRET}
    with new_events() as events:
        response = press(sweep.web, page, "save", **typed)
    assert response.status_code == 302, response.content.decode()[:2000]
    (attached,) = only(events, "flow.action_attached")
    assert_recorded(
        attached,
        sweep,
        sweep.web_actor,
        secrets=(WEBHOOK_SECRET,),
        action_slug="webhook-emit",
        action_version="1.0.0",
        flow_slug="login",
        flow_revision=current_revision_number(sweep),
        trigger=POST_AUTH,
    )
    assert doc(attached.after)["config"]["secret"] == MASK


def test_flow_action_updated__by_put_slot(sweep: Sweep) -> None:
    sweep.put_slot([{"action": "webhook-emit", "version": "1.0.0", "config": _webhook(WEBHOOK_SECRET)}])
    with new_events() as events:
        flow = sweep.put_slot(
            [
                {
                    "action": "webhook-emit",
                    "version": "1.0.0",
                    "config": _webhook(WEBHOOK_SECRET + "-rotated"),
                    "on_error": "continue",
                }
            ]
        )
    (updated,) = only(events, "flow.action_updated")
    assert_recorded(
        updated,
        sweep,
        sweep.api_actor,
        secrets=(WEBHOOK_SECRET,),
        action_slug="webhook-emit",
        action_version="1.0.0",
        flow_slug="login",
        flow_revision=flow["revision"],
        trigger=POST_AUTH,
    )
    assert doc(updated.before)["config"]["secret"] == MASK and doc(updated.after)["config"]["secret"] == MASK
    assert (doc(updated.before)["on_error"], doc(updated.after)["on_error"]) == ("block", "continue")
    assert doc(updated.after)["secrets_changed"] is True


def test_flow_action_detached__by_put_slot(sweep: Sweep) -> None:
    attached = sweep.put_slot(
        [{"action": "geo-gate", "version": "0.1.0", "config": {"api_key": API_KEY}}],
    )
    with new_events() as events:
        flow = sweep.put_slot([])
    (detached,) = only(events, "flow.action_detached")
    assert_recorded(
        detached,
        sweep,
        sweep.api_actor,
        secrets=(API_KEY,),
        action_slug="geo-gate",
        action_version="0.1.0",
        flow_slug="login",
        flow_revision=flow["revision"],
        trigger=POST_AUTH,
    )
    assert flow["revision"] == attached["revision"] + 1
    assert doc(detached.before)["config"] == {"api_key": MASK} and detached.after is None


def _webhook(secret: str) -> dict[str, Any]:
    return {"url": "https://hooks.example.com/in", "secret": secret}


def _two_bindings(sweep: Sweep) -> None:
    attach(
        sweep.personas.tenant_a,
        POST_AUTH,
        BindingSpec("geo-gate", "0.1.0", {"api_key": OTHER_API_KEY, "label": "eu"}),
        BindingSpec("webhook-emit", "1.0.0", _webhook(WEBHOOK_SECRET)),
    )


def test_flow_action_executed__one_event_per_action_run_by_the_api(sweep: Sweep) -> None:
    _two_bindings(sweep)
    body = {
        "trigger": POST_AUTH,
        "transaction_id": "txn-sweep-0001",
        "user": {"id": "user_1", "email": "jane@example.com", "email_verified": True},
        "request": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "hostname": "login.example.com"},
        "context": {"risk": {"score": 12}},
    }
    with new_events() as events:
        response = sweep.call("post", "/api/v1/flows/login/run", body)
    assert response.status_code == 200, response.content
    run = response.json()
    executed = only(events, "flow.action_executed", count=2)
    for event, execution in zip(executed, run["executions"], strict=True):
        assert_recorded(
            event,
            sweep,
            sweep.api_actor,
            secrets=(OTHER_API_KEY, WEBHOOK_SECRET),
            action_slug=execution["action"],
            action_version=execution["version"],
            flow_slug="login",
            flow_revision=run["flow_revision"],
            trigger=POST_AUTH,
            transaction_id="txn-sweep-0001",
        )
        assert doc(event.after)["outcome"] == execution["outcome"] == "continue"
    assert [e.action_slug for e in executed] == ["geo-gate", "webhook-emit"]
    # The execution records the events describe keep their input with the secrets masked too.
    for record in ActionExecution.objects.filter(transaction_id="txn-sweep-0001"):
        stored = json.dumps(record.masked_input, ensure_ascii=False)
        assert OTHER_API_KEY not in stored and WEBHOOK_SECRET not in stored


def test_flow_action_executed__by_try_it_in_the_flow_editor(sweep: Sweep) -> None:
    _two_bindings(sweep)
    form = {
        "try-trigger": POST_AUTH,
        "try-email": "jane@example.com",
        "try-groups": "",
        "try-ip": "203.0.113.9",
        "try-risk_score": "5",
        "try-transaction_id": "txn-sweep-try",
    }
    with new_events() as events:
        response = sweep.post("/t/acme/flows/login/try/", form)
    assert response.status_code == 200
    executed = only(events, "flow.action_executed", count=2)
    for event in executed:
        assert_recorded(
            event,
            sweep,
            sweep.web_actor,
            secrets=(OTHER_API_KEY, WEBHOOK_SECRET),
            flow_slug="login",
            flow_revision=current_revision_number(sweep),
            trigger=POST_AUTH,
            transaction_id="txn-sweep-try",
        )
        assert event.action_version in {"0.1.0", "1.0.0"}


# --- Access: the settings page ---


def test_action_secret_set__on_the_action_page(sweep: Sweep) -> None:
    with new_events() as events:
        response = sweep.post("/t/acme/actions/geo-gate/secrets/", {"name": "GEO_KEY", "value": API_KEY})
    assert response.status_code == 302, response.content.decode()[:2000]
    (secret_set,) = only(events, "action.secret_set")
    assert_recorded(secret_set, sweep, sweep.web_actor, secrets=(API_KEY,), action_slug="geo-gate", target="GEO_KEY")
    assert secret_set.after == {"name": "GEO_KEY", "replaced": False}


def test_action_secret_deleted__on_the_action_page(sweep: Sweep) -> None:
    sweep.post("/t/acme/actions/geo-gate/secrets/", {"name": "GEO_KEY", "value": API_KEY})
    with new_events() as events:
        response = sweep.post("/t/acme/actions/geo-gate/secrets/GEO_KEY/delete/", {})
    assert response.status_code == 302, response.content.decode()[:2000]
    (deleted,) = only(events, "action.secret_deleted")
    assert_recorded(deleted, sweep, sweep.web_actor, secrets=(API_KEY,), action_slug="geo-gate", target="GEO_KEY")
    assert deleted.before == {"name": "GEO_KEY"}


def test_api_token_created__on_the_settings_page(sweep: Sweep) -> None:
    form = {"name": "Terraform", "scopes": ["flows:read", "flows:write"], "expiry": "90"}
    with new_events() as events:
        response = sweep.post("/t/acme/settings/tokens/", form)
    assert response.status_code == 200
    token = ApiToken.objects.get(tenant=sweep.personas.tenant_a, name="Terraform")
    shown_once = re.search(rf"acx_{token.key_id}_([A-Za-z0-9_-]{{20,}})", response.content.decode())
    assert shown_once is not None, "the new token's secret is shown once"
    (created,) = only(events, "api_token.created")
    assert_recorded(created, sweep, sweep.web_actor, secrets=(shown_once.group(1),))
    assert created.target == f"Terraform ({token.key_id})"
    assert doc(created.after)["key_id"] == token.key_id
    assert doc(created.after)["scopes"] == ["flows:read", "flows:write"]
    assert doc(created.after)["expires_at"] is not None


def test_api_token_revoked__on_the_settings_page(sweep: Sweep) -> None:
    token, _ = create_api_token(sweep.personas.tenant_a, name="Old CI", scopes=["audit:read"], acting=SYSTEM)
    with new_events() as events:
        response = sweep.post(f"/t/acme/settings/tokens/{token.key_id}/revoke/", {"confirm": "yes"})
    assert response.status_code == 302
    (revoked,) = only(events, "api_token.revoked")
    assert_recorded(revoked, sweep, sweep.web_actor)
    assert revoked.target == f"Old CI ({token.key_id})"
    assert revoked.before == {"name": "Old CI", "key_id": token.key_id, "scopes": ["audit:read"]}


def test_member_added__by_accepting_an_invitation(sweep: Sweep) -> None:
    response = sweep.post("/t/acme/settings/invitations/", {"email": "newcomer@example.com", "role": "viewer"})
    link = re.search(
        r'id="new-invitation-link" value="http://testserver(/invitations/[\w-]+/)"', response.content.decode()
    )
    assert link is not None, response.content.decode()[:2000]
    newcomer = make_operator("newcomer")
    invitee = Client(headers={"user-agent": USER_AGENT, "x-request-id": REQUEST_ID})
    invitee.force_login(newcomer)
    with new_events() as events:
        response = invitee.post(f"{link.group(1)}accept/")
    assert response.status_code == 302, response.content.decode()[:2000]
    (added,) = only(events, "member.added")
    assert_recorded(added, sweep, ("user", str(newcomer.pk), "newcomer"), target="newcomer", before=None)
    assert doc(added.after)["user"] == "newcomer" and doc(added.after)["role"] == "viewer"
    assert doc(added.after)["invitation"]["invited_by"] == "a-admin"


def test_member_role_changed__on_the_settings_page(sweep: Sweep) -> None:
    add_member(sweep.personas.tenant_a, make_operator("newcomer"), Role.VIEWER, acting=SYSTEM)
    with new_events() as events:
        response = sweep.post("/t/acme/settings/members/newcomer/role/", {"role": "editor"})
    assert response.status_code == 302
    (changed,) = only(events, "member.role_changed")
    assert_recorded(changed, sweep, sweep.web_actor, target="newcomer")
    assert (changed.before, changed.after) == (
        {"user": "newcomer", "role": "viewer"},
        {"user": "newcomer", "role": "editor"},
    )


def test_member_removed__on_the_settings_page(sweep: Sweep) -> None:
    add_member(sweep.personas.tenant_a, make_operator("newcomer"), Role.EDITOR, acting=SYSTEM)
    with new_events() as events:
        response = sweep.post("/t/acme/settings/members/newcomer/remove/", {"confirm": "yes"})
    assert response.status_code == 302
    (removed,) = only(events, "member.removed")
    assert_recorded(removed, sweep, sweep.web_actor, target="newcomer", after=None)
    assert removed.before == {"user": "newcomer", "role": "editor"}
    assert not Membership.objects.filter(tenant=sweep.personas.tenant_a, user__username="newcomer").exists()
