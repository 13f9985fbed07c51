from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit_app.models import AuditEvent
from flows_app.engine import RunRefused
from flows_app.models import ActionExecution, FlowTransaction
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec, InvalidBindings, StaleRevision, save_flow_slots
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of, run

POST_AUTH = "login.post-auth"


def risk_block(threshold: int = 50) -> BindingSpec:
    return BindingSpec("block-by-risk-score", "1.0.0", {"threshold": threshold, "message": "risky"})


def test_an_empty_slot_continues(personas: Any) -> None:
    result = run(personas.tenant_a, POST_AUTH)
    assert result.outcome == {"kind": "continue", "claims": {}, "state": {}}
    assert result.executions == []
    assert result.flow_revision == 1


def test_bindings_run_in_order_and_block_ends_the_slot(personas: Any) -> None:
    tenant = personas.tenant_a
    marker = custom_action(tenant, "marker", 'return { kind: "continue", state: { seen: true } };', [POST_AUTH])
    attach(tenant, POST_AUTH, risk_block(), BindingSpec(marker.slug, "0.1.0"))
    blocked = run(tenant, POST_AUTH, risk=90)
    assert blocked.outcome["kind"] == "block" and blocked.outcome["reason"] == "risky"
    assert [e.action for e in blocked.executions] == ["block-by-risk-score"]
    passed = run(tenant, POST_AUTH, risk=10)
    assert passed.outcome["kind"] == "continue" and passed.outcome["state"] == {"seen": True}
    assert [e.action for e in passed.executions] == ["block-by-risk-score", "marker"]


def test_demand_mfa_is_remembered_and_the_chain_goes_on(personas: Any) -> None:
    tenant = personas.tenant_a
    redirect_rules = {"rules": [{"group": "staff", "url": "https://staff.example.com/"}]}
    attach(
        tenant,
        POST_AUTH,
        BindingSpec("demand-mfa-by-risk-score", "1.0.0", {"threshold": 30}),
        BindingSpec("redirect-by-group", "1.0.0", redirect_rules),
    )
    mfa_only = run(tenant, POST_AUTH, risk=60)
    assert mfa_only.outcome["kind"] == "demand_mfa"
    assert len(mfa_only.executions) == 2
    # redirect outranks demand_mfa
    both = run(tenant, POST_AUTH, risk=60, groups=["staff"])
    assert both.outcome == {"kind": "redirect", "url": "https://staff.example.com/", "claims": {}, "state": {}}


def test_claims_and_state_merge_later_wins(personas: Any) -> None:
    tenant = personas.tenant_a
    first = custom_action(
        tenant,
        "first",
        'return { kind: "continue", claims: { "https://x/a": 1, "https://x/b": 1 } };',
        ["login.pre-token"],
    )
    attach(
        tenant,
        "login.pre-token",
        BindingSpec(first.slug, "0.1.0"),
        BindingSpec("decorate-token", "1.0.0", {"claim": "https://x/b", "value": "two"}),
        BindingSpec("decorate-token", "1.0.0", {"claim": "https://x/plan", "from": "app_metadata.plan"}),
    )
    result = run(tenant, "login.pre-token")
    assert result.outcome["claims"] == {"https://x/a": 1, "https://x/b": "two", "https://x/plan": "gold"}


@pytest.mark.parametrize(("on_error", "expected"), [("block", "block"), ("continue", "continue")])
def test_on_error_decides_what_a_failure_means(personas: Any, on_error: str, expected: str) -> None:
    tenant = personas.tenant_a
    broken = custom_action(tenant, "broken", 'throw new Error("database down");', [POST_AUTH])
    attach(tenant, POST_AUTH, BindingSpec(broken.slug, "0.1.0", on_error=on_error))
    result = run(tenant, POST_AUTH)
    assert result.outcome["kind"] == expected
    execution = result.executions[0]
    assert execution.outcome == "error" and execution.error is not None
    assert "database down" in execution.error["message"]
    settle_tenant(tenant)
    row = ActionExecution.objects.get()
    assert (row.outcome, row.error_code, row.on_error_applied) == ("error", "exception", on_error)


def test_a_result_the_slot_does_not_allow_is_an_error(personas: Any) -> None:
    tenant = personas.tenant_a
    mfa = custom_action(tenant, "mfa-early", 'return { kind: "demand_mfa" };', ["login.pre-credential-check"])
    attach(tenant, "login.pre-credential-check", BindingSpec(mfa.slug, "0.1.0"))
    result = run(tenant, "login.pre-credential-check")
    assert result.outcome["kind"] == "block"
    assert result.executions[0].error is not None
    assert result.executions[0].error["code"] == "disallowed_result"


def test_a_timeout_follows_on_error(personas: Any) -> None:
    tenant = personas.tenant_a
    slow = custom_action(tenant, "slow", "while (true) {}", [POST_AUTH])
    attach(tenant, POST_AUTH, BindingSpec(slow.slug, "0.1.0", timeout_ms=100, on_error="continue"))
    result = run(tenant, POST_AUTH)
    assert result.outcome["kind"] == "continue"
    assert result.executions[0].error is not None and result.executions[0].error["code"] == "timeout"


def test_in_flight_transactions_keep_their_revision(personas: Any) -> None:
    tenant = personas.tenant_a
    started = run(tenant, "login.pre-credential-check", transaction_id="tx-1", risk=90)
    assert started.flow_revision == 1
    attach(tenant, POST_AUTH, risk_block())  # revision 2 blocks risky sign-ins
    in_flight = run(tenant, POST_AUTH, transaction_id="tx-1", risk=90)
    assert in_flight.flow_revision == 1 and in_flight.outcome["kind"] == "continue"
    fresh = run(tenant, POST_AUTH, transaction_id="tx-2", risk=90)
    assert fresh.flow_revision == 2 and fresh.outcome["kind"] == "block"


def test_expired_transactions_start_over_on_the_current_revision(personas: Any) -> None:
    tenant = personas.tenant_a
    run(tenant, "login.pre-credential-check", transaction_id="tx-old")
    attach(tenant, POST_AUTH, risk_block())
    FlowTransaction.objects.filter(transaction_id="tx-old").update(expires_at=timezone.now() - timedelta(seconds=1))
    result = run(tenant, POST_AUTH, transaction_id="tx-old", risk=90)
    assert result.flow_revision == 2 and result.outcome["kind"] == "block"


def test_a_transaction_keeps_its_revision_for_an_hour_by_default(personas: Any) -> None:
    tenant = personas.tenant_a
    run(tenant, "login.pre-credential-check", transaction_id="tx-hour")
    started = FlowTransaction.objects.get(transaction_id="tx-hour")
    assert started.expires_at - started.created_at == timedelta(hours=1)
    attach(tenant, POST_AUTH, risk_block())
    # 59 minutes in, the attempt still runs the revision it started on.
    FlowTransaction.objects.filter(pk=started.pk).update(
        created_at=started.created_at - timedelta(minutes=59), expires_at=started.expires_at - timedelta(minutes=59)
    )
    assert run(tenant, POST_AUTH, transaction_id="tx-hour", risk=90).flow_revision == 1


def test_the_transaction_lifetime_is_configurable(personas: Any, settings: Any) -> None:
    settings.FLOW_TRANSACTION_TTL_SECONDS = 120
    tenant = personas.tenant_a
    run(tenant, "login.pre-credential-check", transaction_id="tx-short")
    started = FlowTransaction.objects.get(transaction_id="tx-short")
    assert started.expires_at - started.created_at == timedelta(seconds=120)
    attach(tenant, POST_AUTH, risk_block())
    assert run(tenant, POST_AUTH, transaction_id="tx-short", risk=90).flow_revision == 1
    # Two minutes later (moved back in time rather than waited for) it has expired.
    FlowTransaction.objects.filter(pk=started.pk).update(
        created_at=started.created_at - timedelta(seconds=121), expires_at=started.expires_at - timedelta(seconds=121)
    )
    result = run(tenant, POST_AUTH, transaction_id="tx-short", risk=90)
    assert result.flow_revision == 2 and result.outcome["kind"] == "block"


def test_state_carries_across_the_triggers_of_a_transaction(personas: Any) -> None:
    tenant = personas.tenant_a
    setter = custom_action(
        tenant, "setter", 'return { kind: "continue", state: { step: "checked" } };', ["login.pre-credential-check"]
    )
    reader = custom_action(
        tenant,
        "reader",
        'return { kind: "continue", claims: { "https://x/step": String(input.state["step"]) } };',
        ["login.pre-token"],
    )
    attach(tenant, "login.pre-credential-check", BindingSpec(setter.slug, "0.1.0"))
    attach(tenant, "login.pre-token", BindingSpec(reader.slug, "0.1.0"))
    run(tenant, "login.pre-credential-check", transaction_id="tx-s")
    result = run(tenant, "login.pre-token", transaction_id="tx-s")
    assert result.outcome["claims"] == {"https://x/step": "checked"}


def test_every_execution_is_stored_and_audited_with_masked_input(personas: Any) -> None:
    tenant = personas.tenant_a
    attach(
        tenant,
        POST_AUTH,
        BindingSpec("webhook-emit", "1.0.0", {"url": "https://hooks.example.com/in", "secret": "s3cret-s3cret-s3cret"}),
        risk_block(),
    )
    result = run(tenant, POST_AUTH, transaction_id="tx-a", risk=70)
    assert [e.outcome for e in result.executions] == ["continue", "block"]
    settle_tenant(tenant)
    rows = list(ActionExecution.objects.order_by("position"))
    assert [r.action.slug for r in rows] == ["webhook-emit", "block-by-risk-score"]
    assert rows[0].masked_input["context"]["config"]["secret"] == "••••••"
    assert "s3cret" not in str(rows[0].masked_input)
    events = AuditEvent.objects.filter(type="flow.action_executed", transaction_id="tx-a")
    assert sorted((e.action_slug, (e.after or {})["outcome"]) for e in events) == [
        ("block-by-risk-score", "block"),
        ("webhook-emit", "continue"),
    ]
    assert all(e.flow_slug == "login" and e.flow_revision == 2 for e in events)


def test_a_trigger_of_another_flow_kind_is_refused(personas: Any) -> None:
    with pytest.raises(RunRefused):
        run(personas.tenant_a, "registration.pre-create")


def test_a_disabled_flow_runs_nothing(personas: Any) -> None:
    tenant = personas.tenant_a
    flow = attach(tenant, POST_AUTH, risk_block())
    flow.enabled = False
    flow.save()
    result = run(tenant, POST_AUTH, risk=99)
    assert result.outcome["kind"] == "continue" and result.executions == []


def test_saving_refuses_drafts_incompatible_slots_and_bad_config(personas: Any) -> None:
    tenant = personas.tenant_a
    draft_only = custom_action(tenant, "drafty", 'return { kind: "continue" };', [POST_AUTH])
    draft_only.versions.update(status="draft")
    with pytest.raises(InvalidBindings) as invalid:
        attach(
            tenant,
            POST_AUTH,
            BindingSpec(draft_only.slug, "0.1.0"),
            BindingSpec("decorate-token", "1.0.0", {"claim": "x", "value": "y"}),
            BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 500}),
        )
    errors = invalid.value.errors
    assert "not published" in errors["login.post-auth.0.version"][0]
    assert "cannot run in login.post-auth" in errors["login.post-auth.1.action"][0]
    assert "login.post-auth.2.config.threshold" in errors
    assert flow_of(tenant).current_revision.number == 1  # type: ignore[union-attr]


def test_reserved_claims_are_refused_at_config_time(personas: Any) -> None:
    with pytest.raises(InvalidBindings) as invalid:
        attach(
            personas.tenant_a, "login.pre-token", BindingSpec("decorate-token", "1.0.0", {"claim": "sub", "value": "x"})
        )
    assert "login.pre-token.0.config.claim" in invalid.value.errors


@pytest.mark.parametrize("claim", ["plan", "https://example.com", "https://example.com/", "https://example.com/plan\n"])
def test_claim_names_must_be_namespaced(personas: Any, claim: str) -> None:
    with pytest.raises(InvalidBindings) as invalid:
        attach(
            personas.tenant_a, "login.pre-token", BindingSpec("decorate-token", "1.0.0", {"claim": claim, "value": "x"})
        )
    assert "namespaced" in invalid.value.errors["login.pre-token.0.config.claim"][0]


def test_a_stale_save_is_refused(personas: Any) -> None:
    tenant = personas.tenant_a
    attach(tenant, POST_AUTH, risk_block())
    with pytest.raises(StaleRevision) as stale:
        save_flow_slots(flow_of(tenant), {POST_AUTH: []}, expected_revision=1, acting=SYSTEM)
    assert stale.value.current.number == 2
    assert flow_of(tenant).current_revision.bindings.count() == 1  # type: ignore[union-attr]


def test_saves_audit_attach_update_detach_with_masked_secrets(personas: Any) -> None:
    tenant = personas.tenant_a
    hook = {"url": "https://hooks.example.com/in", "secret": "first-secret-0123456789"}
    attach(tenant, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", hook))
    # same binding, secret left out → kept; only the include list changes
    attach(tenant, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", {"url": hook["url"], "include": ["user"]}))
    attach(tenant, POST_AUTH)
    events = list(AuditEvent.objects.filter(type__startswith="flow.action_").order_by("id"))
    assert [e.type for e in events] == ["flow.action_attached", "flow.action_updated", "flow.action_detached"]
    attached_after, updated_before, updated_after = events[0].after or {}, events[1].before or {}, events[1].after or {}
    assert attached_after["config"]["secret"] == "••••••"
    assert "first-secret" not in str([e.before for e in events] + [e.after for e in events])
    assert updated_before["config"].get("include") is None and updated_after["config"]["include"] == ["user"]
    assert "secrets_changed" not in updated_after
    assert [e.flow_revision for e in events] == [2, 3, 4]


def test_a_secret_left_blank_is_kept_and_still_used(personas: Any) -> None:
    from flows_app.bindings import binding_config

    tenant = personas.tenant_a
    attach(
        tenant, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", {"url": "https://a.example.com/", "secret": "k" * 20})
    )
    flow = attach(tenant, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", {"url": "https://b.example.com/"}))
    binding = flow.current_revision.bindings.get()  # type: ignore[union-attr]
    assert binding_config(binding) == {"url": "https://b.example.com/", "secret": "k" * 20}
    assert "secret" not in binding.config
