"""Writing audit events. Every write in the product calls `record` inside its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit_app.chain import GENESIS_HASH, link
from audit_app.models import EVENT_TYPES, AuditChainHead, AuditEvent
from core.row_insert import BatchCursor
from tenants.acting import Actor, RequestMeta, history_time
from tenants.models import Tenant


class UnknownEventType(ValueError):
    pass


@dataclass(frozen=True)
class EventDraft:
    """An audit event before it is written; `record_many` writes a batch of them at once."""

    tenant: Tenant
    event_type: str
    actor: Actor
    meta: RequestMeta | None = None
    action_slug: str = ""
    action_version: str = ""
    flow_slug: str = ""
    flow_revision: int | None = None
    trigger: str = ""
    target: str = ""
    before: Any = None
    after: Any = None
    transaction_id: str = ""
    # When the change happened, for a batch that carries its own times (settled runs); left out,
    # the time being imported (tenants.acting.recording_history_at) or else now.
    occurred_at: datetime | None = None

    def as_row(self) -> AuditEvent:
        row = AuditEvent(**vars(self.as_values()))
        row.tenant = self.tenant  # the caller's instance: reading it later costs no query
        return row

    def as_values(self) -> SimpleNamespace:
        """The event's fields by attname, readable as attributes like a model instance (what
        the chain's hash reads), without the cost of building one."""
        if self.event_type not in EVENT_TYPES:
            raise UnknownEventType(self.event_type)
        meta = self.meta or RequestMeta()
        return SimpleNamespace(
            occurred_at=self.occurred_at or history_time() or timezone.now(),
            tenant_id=self.tenant.pk,
            type=self.event_type,
            actor_kind=self.actor.kind,
            actor_id=self.actor.id,
            actor_name=self.actor.name,
            action_slug=self.action_slug,
            action_version=self.action_version,
            flow_slug=self.flow_slug,
            flow_revision=self.flow_revision,
            trigger=self.trigger,
            target=self.target,
            before=self.before,
            after=self.after,
            ip=meta.ip,
            user_agent=meta.user_agent,
            request_id=meta.request_id,
            transaction_id=self.transaction_id,
        )


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("audit events must be written inside transaction.atomic()")


def lock_chain_head(cursor: BatchCursor, tenant_id: int) -> tuple[int, str]:
    """The tenant's chain head (last seq and hash), locked until the caller's transaction ends,
    so concurrent writers of the tenant's events queue up. Starts the chain if there is none."""
    # Plain SQL: this runs for every batch of flow runs, and the ORM's query building cost more
    # than the queries.
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    read_head = f"SELECT last_seq, last_hash FROM {table} WHERE tenant_id = %s{lock}"  # noqa: S608 (model names)
    cursor.execute(read_head, [tenant_id])
    found = cursor.fetchone()
    if found is None:
        # A tenant's first event. Of two writers racing to start the chain, the second one's
        # INSERT waits for the first one's transaction and then does nothing, so its second read
        # sees (and locks) the winner's row.
        start = (
            f"INSERT INTO {table} (tenant_id, last_seq, last_hash, anchored_seq, anchored_hash)"  # noqa: S608
            " VALUES (%s, 0, %s, 0, '') ON CONFLICT (tenant_id) DO NOTHING"
        )
        cursor.execute(start, [tenant_id, GENESIS_HASH])
        cursor.execute(read_head, [tenant_id])
        found = cursor.fetchone()
    return int(found[0]), str(found[1] or GENESIS_HASH)


def _chain_onto_head(cursor: BatchCursor, tenant_id: int, rows: Sequence[AuditEvent | SimpleNamespace]) -> None:
    """Give `rows` the next seqs of their tenant's hash chain (audit_app.chain), holding the
    head's lock (`lock_chain_head`) so the chain stays linear."""
    seq, last_hash = lock_chain_head(cursor, tenant_id)
    for row in rows:
        seq += 1
        last_hash = link(row, seq, last_hash)
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    move_head = f"UPDATE {table} SET last_seq = %s, last_hash = %s WHERE tenant_id = %s"  # noqa: S608 (model names)
    cursor.execute(move_head, [seq, last_hash, tenant_id])


def record(**fields: Any) -> AuditEvent:
    """Append one audit event. Must run inside the transaction of the change it describes,
    so the change and its event land together or not at all. Takes EventDraft's fields."""
    row = EventDraft(**fields).as_row()
    _require_transaction()
    with connection.cursor() as cursor:
        _chain_onto_head(cursor, row.tenant_id, [row])
    row.save()
    return row


def record_many(drafts: list[EventDraft]) -> list[AuditEvent]:
    """Append a batch of events in one INSERT, inside the caller's transaction (flow runs' events
    are settled in batches by flows_app.run_records)."""
    if not drafts:
        return []
    _require_transaction()
    rows = [draft.as_row() for draft in drafts]
    with connection.cursor() as cursor:
        chain_events(cursor, rows)
    return AuditEvent.objects.bulk_create(rows)


def chain_events(cursor: BatchCursor, rows: Sequence[AuditEvent | SimpleNamespace]) -> None:
    """Give unsaved `rows` their seqs and hashes, tenant by tenant, moving (and locking) each
    tenant's chain head. The caller inserts them in the same transaction."""
    by_tenant: dict[int, list[AuditEvent | SimpleNamespace]] = {}
    for row in rows:
        by_tenant.setdefault(row.tenant_id, []).append(row)
    # Heads are always locked in tenant order, so two multi-tenant batches cannot deadlock.
    for tenant_id in sorted(by_tenant):
        _chain_onto_head(cursor, tenant_id, by_tenant[tenant_id])
