from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from audit_app.models import AppendOnlyError, AuditEvent
from audit_app.services import Actor, RequestMeta, UnknownEventType, record


def _event(tenant: Any) -> AuditEvent:
    with transaction.atomic():
        return record(
            tenant=tenant,
            event_type="action.created",
            actor=Actor.system("tests"),
            meta=RequestMeta(ip="203.0.113.9", user_agent="pytest", request_id="req-12345678"),
            action_slug="my-action",
            action_version="0.1.0",
            after={"name": "My action"},
        )


def test_it_records_every_field(personas: Any) -> None:
    event = _event(personas.tenant_a)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.type == "action.created"
    assert (stored.actor_kind, stored.actor_name) == ("system", "tests")
    assert (stored.action_slug, stored.action_version) == ("my-action", "0.1.0")
    assert (stored.ip, stored.user_agent, stored.request_id) == ("203.0.113.9", "pytest", "req-12345678")
    assert stored.occurred_at.tzinfo is not None


def test_events_cannot_be_changed_or_deleted_through_the_orm(personas: Any) -> None:
    event = _event(personas.tenant_a)
    event.type = "action.version_saved"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(type="member.added")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).type == "action.created"


def test_unknown_types_are_refused(personas: Any) -> None:
    with pytest.raises(UnknownEventType), transaction.atomic():
        record(tenant=personas.tenant_a, event_type="action.renamed", actor=Actor.system())


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_is_refused(personas: Any) -> None:
    with pytest.raises(transaction.TransactionManagementError):
        record(tenant=personas.tenant_a, event_type="action.created", actor=Actor.system())
    assert not AuditEvent.objects.filter(type="action.created").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="database triggers exist on PostgreSQL only")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_app_auditevent SET type = 'member.added'",
        "DELETE FROM audit_app_auditevent",
        "TRUNCATE audit_app_auditevent",
    ],
)
def test_postgresql_refuses_raw_rewrites(personas: Any, statement: str) -> None:
    event = _event(personas.tenant_a)
    with connection.cursor() as cursor:
        # The test runner's own flush permission is switched off for this statement.
        cursor.execute("SET LOCAL actions_console.test_flush = 'off'")
        # Django's foreign keys are deferred; settle them so TRUNCATE reaches our trigger.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(statement)
    assert AuditEvent.objects.get(pk=event.pk).type == "action.created"
