"""The run path's hand-written SQL reads and writes what the ORM would."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit_app.models import AuditEvent
from config.row_insert import insert_rows
from flows_app.models import ActionExecution, Flow
from flows_app.prepared import flow_for_run
from flows_app.services import BindingSpec, set_flow_enabled
from tests.flow_helpers import attach, flow_of


def test_flow_for_run_matches_the_orm(personas: Any) -> None:
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    loaded = flow_for_run(personas.tenant_a, "login")
    assert loaded is not None
    stored = Flow.objects.select_related("current_revision").get(pk=flow.pk)
    for field in Flow._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(stored, field.attname), field.name
    assert loaded.current_revision is not None and stored.current_revision is not None
    assert loaded.current_revision.number == stored.current_revision.number == 2
    # Converted like the ORM does: an aware datetime, not the database's text.
    assert loaded.current_revision.created_at == stored.current_revision.created_at
    assert loaded.current_revision.created_at.tzinfo is not None


def test_flow_for_run_sees_disabling_and_other_tenants_flows_not_at_all(personas: Any) -> None:
    set_flow_enabled(flow_of(personas.tenant_a), False)
    loaded = flow_for_run(personas.tenant_a, "login")
    assert loaded is not None and loaded.enabled is False
    assert flow_for_run(personas.tenant_a, "no-such-flow") is None
    # A slug that exists in the other tenant only.
    Flow.objects.filter(tenant=personas.tenant_b, slug="login").update(slug="globex-login")
    assert flow_for_run(personas.tenant_a, "globex-login") is None


def test_insert_rows_stores_what_bulk_create_would(personas: Any) -> None:
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    action = flow.current_revision.bindings.get().action  # type: ignore[union-attr]
    key = uuid.uuid4()
    rows = [
        ActionExecution(
            tenant=personas.tenant_a,
            flow=flow,
            revision_number=2,
            transaction_id=f"tx-{n}",
            trigger="login.post-auth",
            binding_key=key,
            action=action,
            action_version="1.0.0",
            position=n,
            outcome="block",
            result={"kind": "block", "reason": "naïve ✓"},
            duration_ms=1.5,
            logs=[{"level": "info", "message": "hello"}],
            masked_input={"user": {"email": "a@example.com"}, "config": {"secret": "••••"}},
        )
        for n in range(3)
    ]
    insert_rows(rows)
    assert all(row.pk is not None for row in rows)
    stored = {row.pk: row for row in ActionExecution.objects.filter(pk__in=[r.pk for r in rows])}
    for row in rows:
        again = stored[row.pk]
        assert again.transaction_id == row.transaction_id and again.position == row.position
        assert again.binding_key == key
        assert again.result == {"kind": "block", "reason": "naïve ✓"}
        assert again.masked_input["config"] == {"secret": "••••"}
        assert abs((again.occurred_at - row.occurred_at).total_seconds()) < 0.001
        assert again.error_code == ""


def test_insert_rows_keeps_null_json_and_ip_addresses(personas: Any) -> None:
    with_meta = AuditEvent(
        tenant=personas.tenant_a,
        type="flow.action_executed",
        actor_kind="system",
        actor_name="t",
        ip="2001:db8::1",
        before=None,
        after={"outcome": "continue"},
        occurred_at=timezone.now(),
    )
    with transaction.atomic():
        insert_rows([with_meta])
    again = AuditEvent.objects.get(pk=with_meta.pk)
    assert again.ip == "2001:db8::1" and again.before is None and again.after == {"outcome": "continue"}
