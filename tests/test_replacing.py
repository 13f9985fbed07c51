"""Contract §14 roll back and promote, at the service: one new revision equal to another revision's
bindings, never a rewritten history, refused whole when any binding can no longer be saved."""

from __future__ import annotations

from typing import Any

import pytest

from audit_app.models import AuditEvent
from flows_app.bindings import stored_secrets
from flows_app.deleting import delete_action
from flows_app.models import Binding, Flow, FlowRevision
from flows_app.replacing import (
    NoSuchRevision,
    NothingToChange,
    NotPromotable,
    ReplacementRefused,
    plan_promote,
    plan_restore,
    promote_flow,
    restore_revision,
)
from flows_app.services import BindingSpec, StaleRevision, create_flow
from tests.factories import acting_as
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of

POST_AUTH = "login.post-auth"
PRE_CREDENTIAL = "login.pre-credential-check"
HOOK = "https://hooks.example.com/in"


def risk_block(threshold: int, **overrides: Any) -> BindingSpec:
    return BindingSpec("block-by-risk-score", "1.0.0", {"threshold": threshold, "message": "risky"}, **overrides)


def webhook(secret: str) -> BindingSpec:
    return BindingSpec("webhook-emit", "1.0.0", {"url": HOOK, "secret": secret})


def bindings_of(revision: FlowRevision) -> list[tuple[Any, ...]]:
    rows = Binding.objects.filter(revision=revision).select_related("action", "pinned_version")
    return sorted(
        (
            b.trigger,
            b.position,
            b.action.slug,
            b.pinned_version.version,
            b.config,
            stored_secrets(b),
            b.enabled,
            b.on_error,
            b.timeout_ms,
        )
        for b in rows
    )


def revision(tenant: Any, number: int, flow_slug: str = "login") -> FlowRevision:
    return FlowRevision.objects.get(flow__tenant=tenant, flow__slug=flow_slug, number=number)


@pytest.fixture
def history(personas: Any) -> Any:
    """login: r1 empty · r2 risk block 50 (continue on error, 700 ms) + webhook secret A in post-auth,
    a rate limit in pre-credential-check · r3 risk block 90 disabled, webhook with secret B, and
    no rate limit."""
    tenant = personas.tenant_a
    attach(tenant, POST_AUTH, risk_block(50, on_error="continue", timeout_ms=700), webhook("secret-A-0123456789"))
    attach(tenant, PRE_CREDENTIAL, BindingSpec("rate-limit-by-ip", "1.1.0", {"limit": 5, "window_seconds": 60}))
    attach(tenant, POST_AUTH, risk_block(90, enabled=False), webhook("secret-B-0123456789"))
    attach(tenant, PRE_CREDENTIAL)
    return personas


def test_restore_makes_a_new_revision_equal_to_the_earlier_one_and_keeps_history(history: Any) -> None:
    tenant = history.tenant_a
    flow = flow_of(tenant)
    before = {n: bindings_of(revision(tenant, n)) for n in range(1, 6)}
    made = restore_revision(flow, 3, expected_revision=5, acting=acting_as(history.editor))
    assert made.number == 6 and made.comment == "Restored revision 3" and made.created_by == history.editor
    assert flow_of(tenant).current_revision == made
    assert bindings_of(made) == before[3]
    assert {n: bindings_of(revision(tenant, n)) for n in range(1, 6)} == before  # nothing rewritten
    # The same attachments come back (by key), so run history and diffs follow them.
    keys = {b.key for b in Binding.objects.filter(revision=revision(tenant, 3))}
    assert {b.key for b in Binding.objects.filter(revision=made)} == keys


def test_restore_is_audited_as_flow_changes_noted_with_the_revision(history: Any) -> None:
    tenant = history.tenant_a
    restore_revision(flow_of(tenant), 3, expected_revision=5, acting=acting_as(history.editor))
    events = AuditEvent.objects.filter(tenant=tenant, flow_revision=6).order_by("id")
    assert {(e.type, e.trigger, e.action_slug) for e in events} == {
        ("flow.action_attached", PRE_CREDENTIAL, "rate-limit-by-ip"),
        ("flow.action_updated", POST_AUTH, "block-by-risk-score"),
        ("flow.action_updated", POST_AUTH, "webhook-emit"),
    }
    assert {(e.target, e.actor_kind, e.actor_id) for e in events} == {
        ("Restored revision 3", "user", str(history.editor.pk))
    }
    risk = next(e for e in events if e.action_slug == "block-by-risk-score")
    was, now = dict(risk.before or {}), dict(risk.after or {})
    assert (was["config"]["threshold"], now["config"]["threshold"]) == (90, 50)
    assert (was["enabled"], now["enabled"]) == (False, True)
    hook = dict(next(e for e in events if e.action_slug == "webhook-emit").after or {})
    assert hook["secrets_changed"] is True and "secret-A" not in str(hook)


def test_restore_refuses_a_stale_revision_an_unknown_one_and_one_that_changes_nothing(history: Any) -> None:
    flow = flow_of(history.tenant_a)
    with pytest.raises(StaleRevision) as stale:
        restore_revision(flow, 3, expected_revision=4, acting=SYSTEM)
    assert stale.value.current.number == 5
    with pytest.raises(NoSuchRevision, match="no revision 9"):
        restore_revision(flow, 9, expected_revision=5, acting=SYSTEM)
    with pytest.raises(NothingToChange, match="already has these bindings"):
        restore_revision(flow, 5, expected_revision=5, acting=SYSTEM)
    assert flow_of(history.tenant_a).current_revision.number == 5  # type: ignore[union-attr]


def test_restore_refuses_a_revision_whose_action_was_deleted_since_naming_the_binding(personas: Any) -> None:
    tenant = personas.tenant_a
    custom_action(tenant, "geo-gate", 'return { kind: "continue" };', [POST_AUTH])
    attach(tenant, POST_AUTH, risk_block(50), BindingSpec("geo-gate", "0.1.0", {}))
    attach(tenant, POST_AUTH)
    delete_action(personas.tenant_a.actions.get(slug="geo-gate"), acting=SYSTEM)
    # A new action takes the slug: restoring must not quietly bind it in the old one's place.
    custom_action(tenant, "geo-gate", 'return { kind: "block", reason: "new" };', [POST_AUTH])
    plan = plan_restore(flow_of(tenant), 2)
    (problem,) = plan.problems
    assert (problem.field, problem.trigger, problem.position, problem.action) == (
        f"{POST_AUTH}.1.action",
        POST_AUTH,
        2,
        "geo-gate",
    )
    assert "was deleted after r2" in problem.message
    with pytest.raises(ReplacementRefused, match="deleted"):
        restore_revision(flow_of(tenant), 2, expected_revision=3, acting=SYSTEM)
    assert flow_of(tenant).current_revision.number == 3  # type: ignore[union-attr]


def test_restore_checks_configs_with_todays_validator(personas: Any) -> None:
    tenant = personas.tenant_a
    attach(tenant, POST_AUTH, webhook("secret-A-0123456789"))
    attach(tenant, POST_AUTH)
    # A revision saved before the webhook check refused private addresses.
    Binding.objects.filter(revision=revision(tenant, 2)).update(config={"url": "https://10.1.2.3/hook"})
    (problem,) = plan_restore(flow_of(tenant), 2).problems
    assert problem.field == f"{POST_AUTH}.0.config.url" and problem.action == "webhook-emit"
    with pytest.raises(ReplacementRefused):
        restore_revision(flow_of(tenant), 2, expected_revision=3, acting=SYSTEM)


def staging(tenant: Any, kind: str = "login", slug: str = "login-staging") -> Flow:
    return create_flow(tenant, name=slug.replace("-", " ").title(), slug=slug, kind=kind, acting=SYSTEM)


def test_promote_replaces_every_slot_of_the_target_as_one_revision(history: Any) -> None:
    tenant = history.tenant_a
    staging(tenant)
    attach(tenant, POST_AUTH, risk_block(70, timeout_ms=900), flow_slug="login-staging")
    claim = BindingSpec("decorate-token", "1.0.0", {"claim": "https://example.com/plan", "value": "gold"})
    attach(tenant, "login.pre-token", claim, flow_slug="login-staging")
    source = flow_of(tenant, "login-staging")
    made = promote_flow(source, flow_of(tenant), expected_revision=5, acting=SYSTEM)
    assert made.number == 6 and made.comment == "Promoted from login-staging r3"
    assert bindings_of(made) == bindings_of(source.current_revision)  # type: ignore[arg-type]
    assert flow_of(tenant, "login-staging").current_revision.number == 3  # type: ignore[union-attr]
    events = AuditEvent.objects.filter(tenant=tenant, flow_slug="login", flow_revision=6)
    # The same action in the same slot is an update of that binding, not a detach and an attach.
    assert sorted((e.type, e.action_slug) for e in events) == [
        ("flow.action_attached", "decorate-token"),
        ("flow.action_detached", "webhook-emit"),
        ("flow.action_updated", "block-by-risk-score"),
    ]
    assert {e.target for e in events} == {"Promoted from login-staging r3"}


def test_promote_refuses_another_kind_the_same_flow_and_a_stale_target(history: Any) -> None:
    tenant = history.tenant_a
    staging(tenant)
    attach(tenant, POST_AUTH, risk_block(70), flow_slug="login-staging")
    login, source = flow_of(tenant), flow_of(tenant, "login-staging")
    with pytest.raises(NotPromotable, match="same kind") as other_kind:
        promote_flow(flow_of(tenant, "registration"), login, expected_revision=5, acting=SYSTEM)
    assert other_kind.value.field == "from"
    with pytest.raises(NotPromotable, match="into itself"):
        promote_flow(login, login, expected_revision=5, acting=SYSTEM)
    with pytest.raises(StaleRevision):
        promote_flow(source, login, expected_revision=4, acting=SYSTEM)
    with pytest.raises(NotPromotable, match="no revision 7") as unknown:
        promote_flow(source, login, source_revision=7, expected_revision=5, acting=SYSTEM)
    assert unknown.value.field == "from_revision"
    assert flow_of(tenant).current_revision.number == 5  # type: ignore[union-attr]


def test_promote_takes_the_previewed_source_revision_and_validates_its_configs(personas: Any) -> None:
    tenant = personas.tenant_a
    staging(tenant)
    attach(tenant, POST_AUTH, risk_block(70), flow_slug="login-staging")
    attach(tenant, POST_AUTH, risk_block(20), flow_slug="login-staging")
    source, login = flow_of(tenant, "login-staging"), flow_of(tenant)
    promote_flow(source, login, source_revision=2, expected_revision=1, acting=SYSTEM)
    (promoted,) = Binding.objects.filter(revision=flow_of(tenant).current_revision)
    assert promoted.config["threshold"] == 70
    # A config today's checks refuse is named, field by field, and nothing is saved.
    Binding.objects.filter(revision=source.current_revision).update(config={"threshold": 150, "message": "x"})
    plan = plan_promote(flow_of(tenant, "login-staging"), flow_of(tenant))
    assert [p.field for p in plan.problems] == [f"{POST_AUTH}.0.config.threshold"]
    with pytest.raises(ReplacementRefused):
        promote_flow(flow_of(tenant, "login-staging"), flow_of(tenant), expected_revision=2, acting=SYSTEM)
    assert flow_of(tenant).current_revision.number == 2  # type: ignore[union-attr]


def test_restore_brings_back_exactly_the_secrets_of_the_revision(personas: Any) -> None:
    tenant = personas.tenant_a
    schema = {"type": "object", "properties": {"api_key": {"type": "string", "writeOnly": True}}}
    custom_action(tenant, "crm-sync", 'return { kind: "continue" };', [POST_AUTH], schema)
    attach(tenant, POST_AUTH, BindingSpec("crm-sync", "0.1.0", {}))
    attach(tenant, POST_AUTH, BindingSpec("crm-sync", "0.1.0", {"api_key": "k-0123456789"}))
    restore_revision(flow_of(tenant), 2, expected_revision=3, acting=SYSTEM)
    # r2 had no key: a restore that kept r3's would not be r2.
    (restored,) = Binding.objects.filter(revision=flow_of(tenant).current_revision)
    assert stored_secrets(restored) == {}
