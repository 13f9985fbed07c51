"""The run path's hand-written SQL reads and writes what the ORM would."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit_app.models import AuditEvent
from core.row_insert import add_rows, prepare_insert, prepare_update, write_at_once, write_batch
from flows_app.models import ActionExecution, Flow, FlowTransaction, WebhookDelivery
from flows_app.prepared import flow_for_run
from flows_app.services import BindingSpec, set_flow_enabled
from tenants.acting import Acting
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
    set_flow_enabled(flow_of(personas.tenant_a), False, acting=Acting.platform("tests"))
    loaded = flow_for_run(personas.tenant_a, "login")
    assert loaded is not None and loaded.enabled is False
    assert flow_for_run(personas.tenant_a, "no-such-flow") is None
    # A slug that exists in the other tenant only.
    Flow.objects.filter(tenant=personas.tenant_b, slug="login").update(slug="globex-login")
    assert flow_for_run(personas.tenant_a, "globex-login") is None


def test_batch_rows_store_what_bulk_create_would(personas: Any) -> None:
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
    with write_batch() as cursor:
        add_rows(cursor, ActionExecution, [row.__dict__ for row in rows])
    stored = {row.transaction_id: row for row in ActionExecution.objects.filter(binding_key=key)}
    assert len(stored) == len(rows)
    for row in rows:
        again = stored[row.transaction_id]
        assert again.transaction_id == row.transaction_id and again.position == row.position
        assert again.binding_key == key
        assert again.result == {"kind": "block", "reason": "naïve ✓"}
        assert again.masked_input["config"] == {"secret": "••••"}
        assert abs((again.occurred_at - row.occurred_at).total_seconds()) < 0.001
        assert again.error_code == ""


def test_batch_rows_keep_null_json_and_ip_addresses(personas: Any) -> None:
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
    with write_batch() as cursor:
        add_rows(cursor, AuditEvent, [with_meta.__dict__])
    again = AuditEvent.objects.get(tenant=personas.tenant_a, actor_name="t")
    assert again.ip == "2001:db8::1" and again.before is None and again.after == {"outcome": "continue"}


def _execution_values(personas: Any, flow: Flow, n: int) -> dict[str, Any]:
    action = flow.current_revision.bindings.get().action  # type: ignore[union-attr]
    return {
        "tenant_id": personas.tenant_a.pk,
        "flow_id": flow.pk,
        "revision_number": 2,
        "transaction_id": f"batch-{n}",
        "trigger": "login.post-auth",
        "binding_key": uuid.uuid4(),
        "action_id": action.pk,
        "action_version": "1.0.0",
        "position": n,
        "outcome": "continue",
        "result": {"kind": "continue", "state": {"n": n}},
        "duration_ms": 0.25,
        "logs": [],
        "masked_input": {"user": {"email": "ü@example.com"}},
    }


def test_a_write_batch_stores_rows_given_by_attname_and_fills_defaults(personas: Any) -> None:
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    before = timezone.now()
    with write_batch() as cursor:
        add_rows(cursor, ActionExecution, [_execution_values(personas, flow, n) for n in range(3)])
        cursor.execute("SELECT COUNT(*) FROM flows_app_actionexecution WHERE transaction_id LIKE %s", ["batch-%"])
        # A read inside the batch sees the rows queued before it.
        assert cursor.fetchone()[0] == 3
    stored = list(ActionExecution.objects.filter(transaction_id__startswith="batch-").order_by("position"))
    assert [row.result for row in stored] == [{"kind": "continue", "state": {"n": n}} for n in range(3)]
    assert stored[0].masked_input == {"user": {"email": "ü@example.com"}}
    # Left out, so filled from the model's defaults: "" for text, now() for occurred_at.
    assert stored[0].error_code == "" and stored[0].on_error_applied == ""
    assert before <= stored[0].occurred_at <= timezone.now()


def test_a_write_batch_is_all_or_nothing(personas: Any) -> None:
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    broken = {**_execution_values(personas, flow, 1), "flow_id": None}  # NOT NULL
    with pytest.raises(IntegrityError), write_batch() as cursor:
        add_rows(cursor, ActionExecution, [_execution_values(personas, flow, 0)])
        add_rows(cursor, ActionExecution, [broken])
    assert not ActionExecution.objects.filter(transaction_id__startswith="batch-").exists()
    # The connection is usable afterwards.
    assert Flow.objects.filter(pk=flow.pk).exists()


def test_a_write_batch_skips_a_conflicting_row_when_asked_and_updates_one(personas: Any) -> None:
    flow = flow_of(personas.tenant_a)
    assert flow.current_revision is not None
    now = timezone.now()
    first = {
        "tenant_id": flow.tenant_id,
        "flow_id": flow.pk,
        "transaction_id": "tx-1",
        "revision_id": flow.current_revision_id,
    }
    with write_batch() as cursor:
        add_rows(cursor, FlowTransaction, [{**first, "state": {"a": 1}, "expires_at": now}])
        again = [{**first, "state": {"b": 2}, "expires_at": now}]
        prepare_insert(FlowTransaction, again, on_conflict_do_nothing=True).run(cursor)
    stored = FlowTransaction.objects.get(flow=flow, transaction_id="tx-1")
    assert stored.state == {"a": 1}
    later = now + timedelta(hours=1)
    with write_batch() as cursor:
        prepare_update(FlowTransaction, stored.pk, {"state": {"c": [1, 2]}, "expires_at": later}).run(cursor)
    stored.refresh_from_db()
    assert stored.state == {"c": [1, 2]} and stored.expires_at == later


def test_a_write_batch_left_by_an_exception_keeps_nothing(personas: Any) -> None:
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    with pytest.raises(RuntimeError, match="half-way"), write_batch() as cursor:
        add_rows(cursor, ActionExecution, [_execution_values(personas, flow, 0)])
        raise RuntimeError("half-way")
    assert not ActionExecution.objects.filter(transaction_id__startswith="batch-").exists()
    with write_batch() as cursor:
        add_rows(cursor, ActionExecution, [_execution_values(personas, flow, 1)])
    assert list(
        ActionExecution.objects.filter(transaction_id__startswith="batch-").values_list("position", flat=True)
    ) == [1]


@pytest.mark.django_db(transaction=True)
def test_an_outermost_write_batch_commits_or_rolls_back_as_a_whole(personas: Any) -> None:
    # Not inside the test's own transaction: the batch's atomic block is the real BEGIN/COMMIT.
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    broken = {**_execution_values(personas, flow, 1), "flow_id": None}  # NOT NULL
    with pytest.raises(IntegrityError), write_batch() as cursor:
        add_rows(cursor, ActionExecution, [_execution_values(personas, flow, 0)])
        add_rows(cursor, ActionExecution, [broken])
    with pytest.raises(RuntimeError), write_batch() as cursor:
        add_rows(cursor, ActionExecution, [_execution_values(personas, flow, 2)])
        raise RuntimeError("half-way")
    assert not connection.in_atomic_block
    with write_batch() as cursor:
        add_rows(cursor, ActionExecution, [_execution_values(personas, flow, 3)])
    positions = ActionExecution.objects.filter(transaction_id__startswith="batch-").values_list("position", flat=True)
    assert list(positions) == [3]


@pytest.mark.django_db(transaction=True)
def test_writing_at_once_is_all_or_nothing_and_leaves_the_session_as_it_was(personas: Any) -> None:
    # Outside any transaction, as the run endpoint calls it: on PostgreSQL one statement that is
    # its own transaction, with its commit relaxed.
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    good = prepare_insert(ActionExecution, [_execution_values(personas, flow, n) for n in range(2)])
    broken = prepare_insert(ActionExecution, [{**_execution_values(personas, flow, 9), "flow_id": None}])
    with pytest.raises(IntegrityError):
        write_at_once([good, broken], relaxed_commit=True)
    assert not ActionExecution.objects.filter(transaction_id__startswith="batch-").exists()
    assert not connection.in_atomic_block

    stored_tx = {
        "tenant_id": flow.tenant_id,
        "flow_id": flow.pk,
        "transaction_id": "tx-once",
        "revision_id": flow.current_revision_id,
        "expires_at": timezone.now(),
    }
    write_at_once([good, prepare_insert(FlowTransaction, [stored_tx]), prepare_insert(WebhookDelivery, [])])
    row = FlowTransaction.objects.get(transaction_id="tx-once")
    session_setting = _synchronous_commit()
    write_at_once([good, prepare_update(FlowTransaction, row.pk, {"state": {"step": 2}})], relaxed_commit=True)
    row.refresh_from_db()
    assert row.state == {"step": 2}
    assert ActionExecution.objects.filter(transaction_id__startswith="batch-").count() == 4
    # The relaxed commit was the statement's own: the session's setting is untouched.
    assert _synchronous_commit() == session_setting


def _synchronous_commit() -> str | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


def test_writing_at_once_inside_a_transaction_joins_it(personas: Any) -> None:
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    with pytest.raises(RuntimeError, match="after"), transaction.atomic():
        write_at_once([prepare_insert(ActionExecution, [_execution_values(personas, flow, 0)])], relaxed_commit=True)
        assert ActionExecution.objects.filter(transaction_id__startswith="batch-").count() == 1
        raise RuntimeError("after")
    assert not ActionExecution.objects.filter(transaction_id__startswith="batch-").exists()
