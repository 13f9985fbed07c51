from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from audit_app.models import AppendOnlyError, AuditEvent
from audit_app.services import UnknownEventType, record
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tenants.acting import Actor, RequestMeta
from tests.flow_helpers import attach


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


@pytest.mark.parametrize(
    ("proxy_count", "expected_ip"),
    [(None, "10.0.0.5"), (1, "198.51.100.23")],
)
def test_events_name_the_client_as_the_lock_out_does(
    client: Any, personas: Any, api_token: Any, settings: Any, proxy_count: int | None, expected_ip: str
) -> None:
    """Behind TRUSTED_PROXY_COUNT proxies the event keeps the forwarded client, not the proxy."""
    settings.TRUSTED_PROXY_COUNT = proxy_count or 0
    token = api_token("runtime:execute")
    body = {"trigger": "login.post-auth", "user": {"id": "u1", "email": "u@example.com"}, "request": {"ip": "1.2.3.4"}}
    attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 90}))
    response = client.post(
        "/api/v1/flows/login/run",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.23"},
        REMOTE_ADDR="10.0.0.5",
    )
    assert response.status_code == 200
    settle_tenant(personas.tenant_a)
    event = AuditEvent.objects.filter(tenant=personas.tenant_a, type="flow.action_executed").get()
    assert event.ip == expected_ip
