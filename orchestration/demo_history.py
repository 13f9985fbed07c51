"""Demo data that tells one incident (contract §10) so the audit views have something true to show.

Three days of sign-ins on acme's login flow. Yesterday at 13:58 UTC an editor lowered the risk
threshold of block-by-risk-score from 80 to 10 ("too many fraud reports"); from 14:00 most
sign-ins were blocked and users retried, until the change was rolled back at 14:41. The
executions and audit events are written as they would have been, with their real times.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from actions_app.models import Action
from actions_app.versioning import VersionDraft, create_custom_action, publish_version
from audit_app.services import EventDraft, record_many
from flows_app.models import ActionExecution, Binding, Flow
from flows_app.run_records import EXECUTION_DIGEST_FIELDS, execution_digest
from flows_app.services import BindingSpec, save_flow_slots
from tenants.acting import Acting, Actor, recording_history_at
from tenants.models import Membership, Tenant

VERIFIED_EMAIL_SOURCE = """export async function execute(input: ActionInput): Promise<ActionResult> {
  // Accounts must confirm their email before they can sign in.
  if (!input.user.email_verified) {
    return { kind: "block", reason: input.context.config.message ?? "Please verify your email first." };
  }
  return { kind: "continue" };
}
"""
PLAN_CLAIM_SOURCE = """export async function execute(input: ActionInput): Promise<ActionResult> {
  const plan = input.user.app_metadata["plan"];
  return {
    kind: "continue",
    claims: { "https://acme.example/plan": typeof plan === "string" ? plan : "free" },
  };
}
"""

NORMAL_THRESHOLD = 80
INCIDENT_THRESHOLD = 10


@dataclass
class _Binder:
    key: Any
    action: Action
    version: str
    position: int  # within its slot, as the run engine numbers executions


def history_start(now: datetime) -> datetime:
    """Where the demo's three days of sign-ins begin."""
    return (now - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)


def founded_at(now: datetime) -> datetime:
    """When the demo tenants and their operators came to be: a day before the sign-ins, so the
    history reads in order (tenant, then actions, then runs that use them)."""
    return history_start(now) - timedelta(days=1)


def incident_window(now: datetime) -> tuple[datetime, datetime, datetime]:
    """(config change, first blocked burst, rollback) — yesterday afternoon UTC."""
    yesterday = (now - timedelta(days=1)).replace(hour=13, minute=58, second=12, microsecond=0)
    return yesterday, yesterday + timedelta(minutes=2), yesterday + timedelta(minutes=43)


def seed_demo_history(tenant: Tenant, *, editor: Any, admin: Any, seed: int = 7) -> bool:
    """Create acme's custom actions, login bindings and history; False if it was already there."""
    if Action.objects.filter(tenant=tenant, slug="require-verified-email").exists():
        return False
    rng = random.Random(seed)  # noqa: S311 - demo data must be repeatable, not secret
    now = timezone.now().replace(microsecond=0)
    start = history_start(now)
    change_at, burst_at, rollback_at = incident_window(now)
    # The demo's history is made by its operators, each with the role they hold in the tenant.
    as_editor, as_admin = _as_operator(tenant, editor), _as_operator(tenant, admin)

    with transaction.atomic():
        draft = VersionDraft(
            VERIFIED_EMAIL_SOURCE,
            {"type": "object", "properties": {"message": {"type": "string", "title": "Message"}}},
            ["login.post-auth"],
        )
        with recording_history_at(start - timedelta(hours=6)):
            verified = create_custom_action(
                tenant, name="Require verified email", slug="require-verified-email", draft=draft, acting=as_editor
            ).version
        with recording_history_at(start - timedelta(hours=5, minutes=30)):
            claim = create_custom_action(
                tenant,
                name="Add plan claim",
                slug="add-plan-claim",
                draft=VersionDraft(PLAN_CLAIM_SOURCE, {"type": "object", "properties": {}}, ["login.pre-token"]),
                acting=as_editor,
            ).version
        with recording_history_at(start - timedelta(hours=4)):
            for version in (verified, claim):
                publish_version(version, acting=as_admin)

        flow = Flow.objects.get(tenant=tenant, slug="login")

        def save(threshold: int, at: datetime, acting: Acting, comment: str) -> None:
            current = Flow.objects.select_related("current_revision").get(pk=flow.pk).current_revision
            assert current is not None
            slots = {
                "login.pre-credential-check": [
                    BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 20, "window_seconds": 60})
                ],
                "login.post-auth": [
                    BindingSpec(
                        "block-by-risk-score",
                        "1.0.0",
                        {"threshold": threshold, "message": "Sign-in blocked: unusual activity."},
                    ),
                    BindingSpec("require-verified-email", verified.version, {}),
                ],
                "login.pre-token": [BindingSpec("add-plan-claim", claim.version, {})],
            }
            with recording_history_at(at):
                save_flow_slots(flow, slots, expected_revision=current.number, comment=comment, acting=acting)

        save(NORMAL_THRESHOLD, start - timedelta(hours=1), as_admin, "Baseline protections")
        save(INCIDENT_THRESHOLD, change_at, as_editor, "Tighten risk threshold after fraud reports")
        save(NORMAL_THRESHOLD, rollback_at, as_admin, "Roll back threshold: sign-ins failing")
        _write_runs(tenant, flow, rng, start, now, burst_at, rollback_at)
    return True


def _as_operator(tenant: Tenant, user: Any) -> Acting:
    membership = Membership.objects.filter(tenant=tenant, user=user).first()
    return Acting.as_operator(user, membership.role_enum if membership else None)


def _bindings_by_action(flow: Flow) -> dict[str, _Binder]:
    assert flow.current_revision is not None
    return {
        b.action.slug: _Binder(b.key, b.action, b.pinned_version.version, b.position)
        for b in Binding.objects.filter(revision=flow.current_revision).select_related("action", "pinned_version")
    }


def _write_runs(
    tenant: Tenant, flow: Flow, rng: random.Random, start: datetime, end: datetime, burst: datetime, rollback: datetime
) -> None:
    flow.refresh_from_db()
    binders = _bindings_by_action(flow)
    revisions = {r.number: r for r in flow.revisions.all()}
    rows: list[ActionExecution] = []
    events: list[EventDraft] = []
    system = Actor.system("login service")
    moment = start
    while moment < end:
        in_incident = burst <= moment < rollback
        # Blocked users retry, so the incident window sees three times the attempts.
        moment += timedelta(seconds=rng.expovariate(1 / (20 if in_incident else 120)))
        revision = 3 if in_incident else (4 if moment >= rollback else 2)
        threshold = INCIDENT_THRESHOLD if in_incident else NORMAL_THRESHOLD
        transaction_id = uuid.uuid4().hex
        user_n = rng.randint(1, 400)
        email = f"user{user_n}@acme-customers.example"
        risk = min(100, int(rng.expovariate(1 / 18)))
        verified = rng.random() > 0.03
        steps: list[tuple[str, str, str, dict[str, Any] | None]] = [
            ("login.pre-credential-check", "rate-limit-by-ip", "continue", {"kind": "continue"})
        ]
        if risk > threshold:
            reason = "Sign-in blocked: unusual activity."
            steps.append(("login.post-auth", "block-by-risk-score", "block", {"kind": "block", "reason": reason}))
        else:
            steps.append(("login.post-auth", "block-by-risk-score", "continue", {"kind": "continue"}))
            if not verified:
                blocked = {"kind": "block", "reason": "Please verify your email first."}
                steps.append(("login.post-auth", "require-verified-email", "block", blocked))
            else:
                steps.append(("login.post-auth", "require-verified-email", "continue", {"kind": "continue"}))
                claims = {
                    "kind": "continue",
                    "claims": {"https://acme.example/plan": rng.choice(["free", "pro", "enterprise"])},
                }
                steps.append(("login.pre-token", "add-plan-claim", "continue", claims))
        at = moment
        for trigger, slug, outcome, result in steps:
            binder = binders[slug]
            at = at + timedelta(milliseconds=rng.randint(20, 400))
            duration = round(rng.uniform(0.2, 4.0) if binder.action.kind == "template" else rng.uniform(0.6, 9.0), 3)
            masked_input = {
                "trigger": trigger,
                "user": {"id": f"user_{user_n}", "email": email, "email_verified": verified, "groups": []},
                "request": {
                    "ip": f"198.51.100.{user_n % 250}",
                    "user_agent": "Mozilla/5.0",
                    "hostname": "login.acme.example",
                },
                "state": {},
                "context": {
                    "tenant": tenant.slug,
                    "flow": flow.slug,
                    "transaction_id": transaction_id,
                    "risk": {"score": risk},
                },
            }
            execution = ActionExecution(
                tenant=tenant,
                flow=flow,
                revision_number=revisions[revision].number,
                transaction_id=transaction_id,
                trigger=trigger,
                binding_key=binder.key,
                action=binder.action,
                action_version=binder.version,
                position=binder.position,
                outcome=outcome,
                result=result,
                duration_ms=duration,
                masked_input=masked_input,
                occurred_at=at,
            )
            rows.append(execution)
            events.append(
                EventDraft(
                    tenant=tenant,
                    event_type="flow.action_executed",
                    actor=system,
                    action_slug=slug,
                    action_version=binder.version,
                    flow_slug=flow.slug,
                    flow_revision=revision,
                    trigger=trigger,
                    transaction_id=transaction_id,
                    after={
                        "outcome": outcome,
                        "duration_ms": duration,
                        "error": None,
                        "on_error_applied": None,
                        # As the settler writes it, so verify_audit covers the demo's executions too.
                        "execution_digest": execution_digest(
                            {name: getattr(execution, name) for name in EXECUTION_DIGEST_FIELDS}
                        ),
                    },
                    occurred_at=at,
                )
            )
    ActionExecution.objects.bulk_create(rows, batch_size=2000)
    record_many(events)
