"""A flow run's records: one row written by the sign-in, settled into executions and audit events.

Why not write them with the run: every execution is an ActionExecution row and a
`flow.action_executed` audit event, and audit events are hash-chained per tenant, so writing them
on the sign-in path meant two rows per execution and a lock on the tenant's chain head, which
every concurrent sign-in of that tenant queued on. Measured on the run endpoint, that bookkeeping
cost more than running five template actions. So the run writes one PendingRunRecord (its
transaction row and outbox messages commit with it, in the same transaction) and `settle_*` turns
pending records into executions and events later, many runs per database transaction.

Who settles:
- the background worker (`manage.py settle_runs`; in `make run` the in-process worker thread),
  normally well under a second after the run;
- every page and API that shows executions or audit events, for its tenant, before it reads
  (`settle_for_reading`), so an operator never sees a run's outcome without its record, even with
  the worker stopped. A reader does a bounded share; beyond it, the page says how many runs
  since when are not in its figures yet (the worker has stopped or fallen behind).

Settling a tenant holds its chain head's lock, so two settlers (or a settler and a console change
being audited) never interleave; each pending row is read and deleted in the same transaction as
the rows made from it, so a run is recorded exactly once. The records keep the run's own time:
an event settled late still sorts where it happened (pages order by occurred_at).

Each event carries the digest of its execution (`after.execution_digest`, see `execution_digest`),
so the audit chain covers the execution rows too: `verify_audit` recomputes it from the stored row
(`check_execution_records`, registered in flows_app.apps), and an edited or removed execution shows
as a break at its event's seq.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from django.db import DataError, IntegrityError, connection
from django.db.models import Min
from django.utils import timezone

from audit_app.chain import RecordCheckResult, record_digest
from audit_app.models import AuditEvent
from audit_app.reading import UNRECORDED_IN_REQUEST, Unrecorded
from audit_app.services import EventDraft, chain_events, lock_chain_head
from audit_app.unreadable import cannot_read
from core.row_insert import BatchCursor, copy_rows, prepare_copy, write_batch
from flows_app.models import ActionExecution, PendingRunRecord
from tenants.acting import Actor, RequestMeta
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# What a record that can never be stored raises (a value the database refuses, a flow or action
# deleted since the run, a payload that is not what pending_record writes). Anything else (a
# deadlock, the database going away) is not the record's fault: it waits for the next attempt.
UNSTORABLE = (DataError, IntegrityError, ValueError, KeyError, TypeError)

# Runs settled per database transaction: large enough that a busy tenant's backlog goes in few
# transactions, small enough that the chain head is not held for long (about 50 ms on PostgreSQL).
SETTLE_BATCH_RUNS = 200
# Tenants looked at per worker round; the next round takes the rest.
TENANTS_PER_ROUND = 50
# Pending runs a page or API settles before it reads: a few batches, well under a second. More
# than that is a backlog (the settler has stopped or fallen behind); the reader then shows what
# is recorded and says what is not, instead of keeping the operator waiting for all of it.
READER_SETTLE_RUNS = 1000


# What an execution's digest covers: every field of it an operator reads. A fixed list, not the
# model's fields: a field added later must not change the digests already in the chain (it would
# come with a new version that covers it too).
EXECUTION_DIGEST_VERSION = "v1"
EXECUTION_DIGEST_FIELDS = (
    "tenant_id",
    "flow_id",
    "revision_number",
    "transaction_id",
    "trigger",
    "binding_key",
    "action_id",
    "action_version",
    "position",
    "outcome",
    "result",
    "error_code",
    "error_message",
    "on_error_applied",
    "duration_ms",
    "logs",
    "masked_input",
    "occurred_at",
)
_DIGEST_DEFAULTS: dict[str, Callable[[], Any]] = {
    model_field.attname: model_field.get_default
    for model_field in ActionExecution._meta.concrete_fields
    if model_field.attname in EXECUTION_DIGEST_FIELDS
}


def pending_record(
    *,
    tenant_id: int,
    flow_id: int,
    flow_slug: str,
    revision_number: int,
    transaction_id: str,
    trigger: str,
    actor: Actor,
    meta: RequestMeta | None,
    executions: list[dict[str, Any]],
) -> dict[str, Any]:
    """The PendingRunRecord row (by attname) of one run. Each execution is a dict of its
    ActionExecution fields that vary per execution, plus `action_slug` for its audit event."""
    meta = meta or RequestMeta()
    payload = {
        "occurred_at": timezone.now().isoformat(),
        "flow_id": flow_id,
        "flow_slug": flow_slug,
        "revision_number": revision_number,
        "transaction_id": transaction_id,
        "trigger": trigger,
        "actor": [actor.kind, actor.id, actor.name],
        "meta": [meta.ip, meta.user_agent, meta.request_id],
        "executions": executions,
    }
    return {"tenant_id": tenant_id, "payload": json.dumps(payload, separators=(",", ":"))}


def settle_tenant(tenant: Tenant | int, most: int | None = None) -> int:
    """Settle the runs of `tenant` that are pending now, oldest first, up to `most` of them; the
    number handled. When nothing is pending it costs one query.

    Only runs already pending when it starts: under a steady stream of sign-ins it would
    otherwise never end. It works in SETTLE_BATCH_RUNS-run transactions."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    newest = (
        PendingRunRecord.objects.waiting()
        .filter(tenant_id=tenant_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if newest is None:
        return 0
    handled = 0
    while most is None or handled < most:
        batch = SETTLE_BATCH_RUNS if most is None else min(SETTLE_BATCH_RUNS, most - handled)
        done = _settle_batch(tenant_id, batch, up_to=newest)
        handled += done
        if done < batch:
            break
    return handled


def settle_for_reading(tenant: Tenant | int) -> Unrecorded | None:
    """Before a page or API reads `tenant`'s executions or audit events: settle its pending runs,
    so an operator sees no outcome without its record. At most READER_SETTLE_RUNS of them: what
    a backlog leaves is returned (and kept for the page's notice), None when nothing is left."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    if settle_tenant(tenant_id, most=READER_SETTLE_RUNS) < READER_SETTLE_RUNS:
        return None
    left = PendingRunRecord.objects.waiting().filter(tenant_id=tenant_id)
    # The settler may take rows between these two reads; what either finds is near enough.
    runs = left.count()
    oldest = left.order_by("id").values_list("payload", flat=True).first()
    if not runs or oldest is None:
        return None
    unrecorded = Unrecorded(runs, _occurred_at(oldest))
    UNRECORDED_IN_REQUEST.set(unrecorded)
    return unrecorded


def _occurred_at(payload: str) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads(payload)["occurred_at"])
    except (ValueError, KeyError, TypeError):
        return None  # a malformed record; the settler will set it aside


def settle_pending(limit: int = SETTLE_BATCH_RUNS) -> int:
    """One worker round: up to `limit` pending runs of each of the TENANTS_PER_ROUND tenants
    whose oldest pending run is oldest (so a busy tenant cannot keep a quiet one waiting); the
    number handled. A tenant that fails is logged and the round goes on with the others."""
    oldest_first = (
        PendingRunRecord.objects.waiting()
        .values("tenant_id")
        .annotate(oldest=Min("id"))
        .order_by("oldest")
        .values_list("tenant_id", flat=True)
    )
    handled = 0
    for tenant_id in list(oldest_first[:TENANTS_PER_ROUND]):
        try:
            handled += _settle_batch(tenant_id, limit)
        except Exception:  # the database went away mid-round: the next round tries again
            logger.exception("Settling the pending runs of tenant %s failed", tenant_id)
    return handled


def _settle_batch(tenant_id: int, limit: int, *, up_to: int | None = None) -> int:
    """Settle up to `limit` of the tenant's oldest waiting runs in one transaction. If that fails,
    one at a time, setting aside any run that cannot be stored on its own (and logging it), so
    one bad record never holds up the tenant's other runs. The number handled."""
    if limit > 1:
        # Which run failed, or whether it was the database, is found out one run at a time below.
        with contextlib.suppress(Exception):
            return _settle_rows(tenant_id, limit, up_to)
    handled = 0
    for _ in range(limit):
        try:
            done = _settle_rows(tenant_id, 1, up_to)
        except _Unstorable as failed:
            _set_aside(tenant_id, failed.record_id, failed.error)
            # The run in the way is out of it: the rest go in batches again.
            return handled + 1 + _settle_batch(tenant_id, limit - handled - 1, up_to=up_to)
        if not done:
            break
        handled += done
    return handled


def _oldest_waiting(cursor: BatchCursor, tenant_id: int, up_to: int | None, limit: int) -> list[tuple[int, str]]:
    """(id, payload) of the tenant's oldest runs waiting to be settled, up to id `up_to`."""
    table = connection.ops.quote_name(PendingRunRecord._meta.db_table)
    bound, params = (" AND id <= %s", [tenant_id, up_to, limit]) if up_to is not None else ("", [tenant_id, limit])
    select = f"SELECT id, payload FROM {table} WHERE tenant_id = %s AND problem = ''{bound} ORDER BY id LIMIT %s"  # noqa: S608
    cursor.execute(select, params)
    return list(cursor.fetchall())


class _Overtaken(Exception):
    """Another settler took some of the runs this one had read: read again."""


class _Unstorable(Exception):
    """The runs read cannot be settled because of what they hold (UNSTORABLE); the first's id."""

    def __init__(self, record_id: int, error: Exception) -> None:
        super().__init__(str(error))
        self.record_id, self.error = record_id, error


def _settle_rows(tenant_id: int, limit: int, up_to: int | None) -> int:
    while True:
        # Read and expand before the transaction: on SQLite its write lock stops every sign-in,
        # so it is held only for the hashing and the writes.
        with connection.cursor() as cursor:
            found = _oldest_waiting(cursor, tenant_id, up_to, limit)
        if not found:
            return 0
        try:
            return _settle_found(tenant_id, found)
        except _Overtaken:
            continue
        except UNSTORABLE as error:
            raise _Unstorable(found[0][0], error) from error


def _settle_found(tenant_id: int, found: list[tuple[int, str]]) -> int:
    """Turn the pending runs read (id, payload) into executions and audit events, in one transaction."""
    table = connection.ops.quote_name(PendingRunRecord._meta.db_table)
    executions: list[dict[str, Any]] = []
    events: list[SimpleNamespace] = []
    tenant = Tenant(pk=tenant_id)  # the drafts read only its pk
    for _, payload in found:
        _expand(tenant, json.loads(payload), executions, events)
    execution_rows = prepare_copy(ActionExecution, executions)
    placeholders = ", ".join(["%s"] * len(found))
    delete = f"DELETE FROM {table} WHERE id IN ({placeholders})"  # noqa: S608 (model name)
    with write_batch() as cursor:
        # The head's lock first: it makes this the tenant's only settler until the commit. Then
        # the rows read must all still be there, or another settler got to some of them since.
        lock_chain_head(cursor, tenant_id)
        cursor.execute(delete, [record_id for record_id, _ in found])
        if cursor.rowcount != len(found):
            raise _Overtaken
        execution_rows.run(cursor)
        chain_events(cursor, events)
        copy_rows(cursor, AuditEvent, [vars(event) for event in events])
    return len(found)


def _set_aside(tenant_id: int, record_id: int, error: Exception) -> None:
    """Mark the run that cannot be settled, so its tenant's other runs go on; logged."""
    problem = f"{type(error).__name__}: {error}"[:2000]
    # Another settler may have set it aside first; it is out of the way either way.
    PendingRunRecord.objects.waiting().filter(pk=record_id).update(problem=problem)
    logger.error(
        "Pending run record %s of tenant %s set aside, it cannot be settled: %s", record_id, tenant_id, problem
    )


def _expand(
    tenant: Tenant, run: dict[str, Any], executions: list[dict[str, Any]], events: list[SimpleNamespace]
) -> None:
    occurred_at = datetime.fromisoformat(run["occurred_at"])
    actor, meta = Actor(*run["actor"]), RequestMeta(*run["meta"])
    for execution in run["executions"]:
        row = {key: value for key, value in execution.items() if key != "action_slug"}
        row.update(
            tenant_id=tenant.pk,
            flow_id=run["flow_id"],
            revision_number=run["revision_number"],
            transaction_id=run["transaction_id"],
            trigger=run["trigger"],
            binding_key=uuid.UUID(execution["binding_key"]),
            occurred_at=occurred_at,
        )
        executions.append(row)
        draft = EventDraft(
            tenant=tenant,
            event_type="flow.action_executed",
            actor=actor,
            meta=meta,
            action_slug=execution["action_slug"],
            action_version=execution["action_version"],
            flow_slug=run["flow_slug"],
            flow_revision=run["revision_number"],
            trigger=run["trigger"],
            transaction_id=run["transaction_id"],
            after={
                "outcome": execution["outcome"],
                "duration_ms": round(execution["duration_ms"], 3),
                "error": {"code": execution["error_code"], "message": execution["error_message"]}
                if execution["error_code"]
                else None,
                "on_error_applied": execution["on_error_applied"] or None,
                "execution_digest": execution_digest(row),
            },
            occurred_at=occurred_at,
        )
        events.append(draft.as_values())


def execution_digest(values: Mapping[str, Any]) -> str:
    """The digest of one execution's record: from the row the settler writes (by attname; a field
    left out has the model's default) or from the row read back, alike."""
    fields = {name: values[name] if name in values else _DIGEST_DEFAULTS[name]() for name in EXECUTION_DIGEST_FIELDS}
    occurred_at, binding_key, duration_ms = fields["occurred_at"], fields["binding_key"], fields["duration_ms"]
    if isinstance(occurred_at, datetime):
        fields["occurred_at"] = occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(binding_key, uuid.UUID):
        fields["binding_key"] = str(binding_key)
    if isinstance(duration_ms, int):
        fields["duration_ms"] = float(duration_ms)  # what the float column gives back for 3
    return f"{EXECUTION_DIGEST_VERSION}:{record_digest(fields)}"


def check_execution_records(tenant_id: int, events: Sequence[AuditEvent]) -> RecordCheckResult:
    """The RecordCheck of flow.action_executed events: the digest each event carries must be that
    of one of the tenant's executions recorded at the event's time (a run's executions and events
    share the run's time). Events from before digests carry none and are only counted."""
    claimed = []
    for event in events:
        digest = event.after.get("execution_digest") if isinstance(event.after, dict) else None
        if isinstance(digest, str):
            claimed.append((event.seq, digest, event.occurred_at))
    stored: Counter[str] = Counter()
    for row in _executions_recorded_at(tenant_id, {at for _, _, at in claimed}):
        # A value no execution could hold (bytes in a text column) matches no digest.
        with contextlib.suppress(TypeError, ValueError):
            stored[execution_digest(row)] += 1
    mismatches = {}
    for seq, digest, at in claimed:
        if stored[digest]:
            stored[digest] -= 1
        else:
            mismatches[seq] = (
                f"no execution recorded at {at.isoformat()} has the digest the event carries "
                f"({digest[:11]}…): its execution record was changed or removed"
            )
    return RecordCheckResult(len(claimed) - len(mismatches), len(events) - len(claimed), mismatches)


def _executions_recorded_at(tenant_id: int, times: Collection[datetime]) -> list[dict[str, Any]]:
    """The digested fields of the tenant's executions at `times`; a row that cannot be read is
    left out (so its event is reported, as for a changed record)."""
    if not times:
        return []
    rows = ActionExecution.objects.filter(tenant_id=tenant_id, occurred_at__in=times).order_by()
    try:
        return list(rows.values(*EXECUTION_DIGEST_FIELDS))
    except Exception as error:
        if not cannot_read(error):
            raise
    readable = []
    for pk in rows.values_list("pk", flat=True):
        try:
            readable += rows.filter(pk=pk).values(*EXECUTION_DIGEST_FIELDS)
        except Exception as error:
            if not cannot_read(error):
                raise
    return readable
