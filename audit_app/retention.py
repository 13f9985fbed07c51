"""Audit retention: how long each tenant keeps its audit events, and the purge that applies it.

A purge deletes a *prefix* of the tenant's hash chain (audit_app.chain): events 1..N by seq, where
N is the last event before the first one still inside the retention period. Events are not always
written in time order (imported history), so "older than the cutoff" alone could punch holes in the
chain; a prefix never does. In the same transaction the purge moves the chain head's anchor to
(N, hash of event N) and records an `audit.purged` event naming that anchor, so `verify_audit`
checks the kept events from N+1 and the anchor against the event.

One transaction per tenant and run: the deletion, the anchor and the purge event land together or
not at all, so there is never a moment (or a crash) where the chain and its anchor disagree or
events vanished without an `audit.purged` event. The purge serialises with retention changes on
the tenant row (tenants.services.lock_tenant), not on the chain head, so the tenant's other writes
go on while the DELETE runs;
the head is locked only for the final anchor update and event. A first purge of a long history can
be bounded with `max_events`: each run then deletes the oldest `max_events` (still a prefix, still
one transaction) and the next run carries on where it stopped.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audit_app.chain import (
    ChainBreak,
    UnreadableHead,
    chain_anchor,
    events_in_seq_order,
    read_chain_head,
    walk_links,
)
from audit_app.models import (
    DEFAULT_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    AuditChainHead,
    AuditEvent,
    AuditRetention,
)
from audit_app.services import record
from tenants.acting import Acting
from tenants.models import Tenant
from tenants.services import lock_tenant


class InvalidRetention(ValueError):
    """A retention period outside what the product allows."""


class ChainBrokenBeforePurge(Exception):
    """The events a purge would delete do not verify; deleting them would destroy the evidence."""

    def __init__(self, chain_break: ChainBreak) -> None:
        super().__init__(f"the chain is broken at {chain_break}; investigate before purging")
        self.chain_break = chain_break


def retention_days(tenant: Tenant) -> int | None:
    """Days the tenant keeps its audit events; None keeps them forever."""
    retention = AuditRetention.objects.filter(tenant=tenant).first()
    return DEFAULT_RETENTION_DAYS if retention is None else retention.days


def validate_retention_days(days: int | None) -> None:
    if days is not None and not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise InvalidRetention(
            f"Keep events for {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days, or keep them forever."
        )


def set_retention(tenant: Tenant, days: int | None, *, acting: Acting) -> int | None:
    """Change how long the tenant keeps its audit events (None: forever) and record
    `audit.retention_changed`; no event when nothing changes. Returns the period now in force."""
    validate_retention_days(days)
    with transaction.atomic():
        lock_tenant(tenant)
        retention, _ = AuditRetention.objects.get_or_create(tenant=tenant)
        if retention.days == days:
            return days
        before = retention.days
        retention.days = days
        retention.save(update_fields=["days"])
        record(
            tenant=tenant,
            event_type="audit.retention_changed",
            actor=acting.actor,
            meta=acting.meta,
            target="audit retention",
            before={"retention_days": before},
            after={"retention_days": days},
        )
    return days


@dataclass(frozen=True)
class PurgePlan:
    """What a purge of one tenant would delete: events anchored_seq+1 .. through_seq."""

    retention_days: int | None
    cutoff: datetime | None
    anchored_seq: int
    anchored_hash: str
    through_seq: int

    @property
    def event_count(self) -> int:
        return max(0, self.through_seq - self.anchored_seq)


def plan_purge(tenant: Tenant, *, now: datetime | None = None, max_events: int | None = None) -> PurgePlan:
    """The prefix of the tenant's chain that lies entirely before its retention cutoff. Raises
    ChainBrokenBeforePurge when the chain head cannot be read."""
    days = retention_days(tenant)
    # The head is read before the events: every event up to its last_seq is committed (the head
    # moves in the writer's transaction), and a later event is never part of this purge.
    try:
        head = read_chain_head(tenant)
    except UnreadableHead as unreadable:
        raise ChainBrokenBeforePurge(unreadable.chain_break) from unreadable
    anchor = chain_anchor(head)
    if days is None or head is None:
        return PurgePlan(days, None, anchor.seq, anchor.hash, anchor.seq)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    first_kept = (
        AuditEvent.objects.for_tenant(tenant)
        .filter(seq__gt=anchor.seq, seq__lte=head.last_seq, occurred_at__gte=cutoff)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    through_seq = head.last_seq if first_kept is None else first_kept - 1
    if max_events is not None:
        through_seq = min(through_seq, anchor.seq + max_events)
    return PurgePlan(days, cutoff, anchor.seq, anchor.hash, max(through_seq, anchor.seq))


@dataclass(frozen=True)
class PurgeResult:
    plan: PurgePlan
    purged_events: int
    purge_event: AuditEvent | None


def purge_tenant(
    tenant: Tenant, *, acting: Acting, now: datetime | None = None, max_events: int | None = None
) -> PurgeResult:
    """Delete the tenant's events older than its retention (a prefix of its chain), anchor the
    rest and record `audit.purged`, all in one transaction (see the module docstring). Refuses
    with ChainBrokenBeforePurge when the events to delete do not verify."""
    with transaction.atomic():
        # Not a get_or_create: a tenant that never chose a period keeps following the default.
        lock_tenant(tenant)
        plan = plan_purge(tenant, now=now, max_events=max_events)
        if plan.event_count == 0:
            return PurgeResult(plan, 0, None)
        # A row that cannot be read (a corrupt time, say) is a break like any other: refused, not a crash.
        # Closed here, inside the transaction: on PostgreSQL it reads through a server-side cursor,
        # which a walk that stops at a break leaves open.
        with closing(events_in_seq_order(tenant, after_seq=plan.anchored_seq, through_seq=plan.through_seq)) as doomed:
            walk = walk_links(doomed, plan.anchored_seq, plan.anchored_hash)
        if walk.chain_break is not None:
            raise ChainBrokenBeforePurge(walk.chain_break)
        if walk.last_seq != plan.through_seq:
            missing = walk.last_seq + 1
            raise ChainBrokenBeforePurge(ChainBreak(missing, "gap", f"event {missing} is missing"))
        purged = _delete_prefix(tenant, plan.anchored_seq, plan.through_seq)
        AuditChainHead.objects.filter(tenant=tenant).update(anchored_seq=plan.through_seq, anchored_hash=walk.last_hash)
        event = record(
            tenant=tenant,
            event_type="audit.purged",
            actor=acting.actor,
            meta=acting.meta,
            target="audit retention",
            before={"through_seq": plan.anchored_seq},
            after={
                "purged_events": purged,
                "through_seq": plan.through_seq,
                "anchored_hash": walk.last_hash,
                "retention_days": plan.retention_days,
                "cutoff": plan.cutoff.isoformat() if plan.cutoff else None,
            },
        )
    return PurgeResult(plan, purged, event)


def _delete_prefix(tenant: Tenant, after_seq: int, through_seq: int) -> int:
    """DELETE the tenant's events after_seq+1..through_seq. The model refuses deletes (append-only),
    so this is SQL; on PostgreSQL it raises the purge flag the append-only trigger honours
    (migration 0008) for this one statement."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgresql:
            cursor.execute("SET LOCAL actions_console.audit_purge = 'on'")
        cursor.execute(
            f"DELETE FROM {table} WHERE tenant_id = %s AND seq > %s AND seq <= %s",  # noqa: S608 (quoted model table)
            [tenant.pk, after_seq, through_seq],
        )
        deleted = cursor.rowcount
        if postgresql:
            # Off again at once, so nothing later in the caller's transaction can delete.
            cursor.execute("SET LOCAL actions_console.audit_purge = 'off'")
    return deleted
