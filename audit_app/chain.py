"""Tamper evidence for audit events: each tenant's events form a hash chain.

Event n of a tenant stores `seq = n`, `prev_hash` = the hash of event n-1 (GENESIS_HASH for the
first) and `hash = sha256(prev_hash + canonical_event(event))`. The tenant's AuditChainHead keeps
the last seq and hash, so removing the chain's tail shows too. Anyone who can rewrite the table
can also recompute the hashes; the chain makes tampering evident, it does not prevent it.

A retention purge (audit_app.retention) removes events 1..N and anchors the chain: the head keeps
(anchored_seq = N, anchored_hash = hash of event N), the chain is checked from N+1 against that
hash, and the newest `audit.purged` event must name the same anchor, so moving the anchor by hand
to hide a deleted prefix shows as well.

Records that live outside the audit table (a flow run's executions) are covered through their
events: such an event carries a digest of its record (`record_digest`), and the app that owns the
record registers a `RecordCheck` that recomputes it, so verification reports an edited or removed
record as a break at its event's seq. Events written before digests carry none and are checked as
they always were.

Verification never stops at a row it cannot read (an unparsable time, a value of the wrong type,
text that is not UTF-8; audit_app.unreadable): that row is the break, at its seq, and a chain head
that cannot be read is a break just past the last event. Only a database that went away stops it.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Max

from audit_app.models import AuditChainHead, AuditEvent
from audit_app.unreadable import cannot_read, described, unreadable_columns
from tenants.models import Tenant

GENESIS_HASH = "0" * 64


def _json_value(value: Any) -> Any:
    """The value as it reads back from a JSON column: PostgreSQL's jsonb turns 1e20 into an
    integer and every backend turns tuples into lists and dictionary keys into strings."""
    if value is None:
        return None
    value = json.loads(json.dumps(value))

    def normalise(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, list):
            return [normalise(element) for element in item]
        if isinstance(item, dict):
            return {key: normalise(element) for key, element in item.items()}
        return item

    return normalise(value)


@functools.lru_cache(maxsize=4096)
def _ip(value: str | None) -> str | None:
    # PostgreSQL's inet column gives back the address in its compressed, lower-case form.
    # Cached: parsing an address costs more than the rest of an event's hash, and a flow run
    # hashes several events from the same address.
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def canonical_event(event: Any) -> str:
    """The event's chained fields as canonical JSON. Takes an AuditEvent (or a historical model
    in a migration); the surrogate `id` is left out so it can be assigned after hashing."""
    fields = {
        "tenant": event.tenant_id,
        "seq": event.seq,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "type": event.type,
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action_slug": event.action_slug,
        "action_version": event.action_version,
        "flow_slug": event.flow_slug,
        "flow_revision": event.flow_revision,
        "trigger": event.trigger,
        "target": event.target,
        "before": _json_value(event.before),
        "after": _json_value(event.after),
        "ip": _ip(event.ip),
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "transaction_id": event.transaction_id,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, event: Any) -> str:
    """The hex SHA-256 linking `event` to the event before it."""
    return hashlib.sha256((prev_hash + canonical_event(event)).encode()).hexdigest()


# Canonical JSON for record digests: built once, as json.dumps with these options builds an
# encoder on every call (a record digest is taken for every execution a settler writes).
_CANONICAL_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def record_digest(fields: Mapping[str, Any]) -> str:
    """The hex SHA-256 of a record's fields (JSON values; times and UUIDs as text), the same
    whether computed from the values about to be written or from the row read back."""
    text = _CANONICAL_JSON.encode(fields)
    if "e+" in text or "-0.0" in text:
        # Rare: a float PostgreSQL's jsonb keeps in another form (1e+16 reads back as the integer
        # 10000000000000000, -0.0 as 0.0); compare it in that form, on every backend. (The text
        # may only hold these in a string, which this leaves as it is.)
        text = _CANONICAL_JSON.encode(json.loads(text, parse_float=_as_jsonb_reads_it))
    return hashlib.sha256(text.encode()).hexdigest()


def _as_jsonb_reads_it(text: str) -> int | float:
    if "e+" in text:
        return int(Decimal(text))  # exact: from the decimal text, as jsonb stores it
    value = float(text)
    return value if value else 0.0


def link(event: Any, seq: int, prev_hash: str) -> str:
    """Give an unsaved event its place in the chain; returns its hash, the next event's prev_hash."""
    event.seq = seq
    event.prev_hash = prev_hash
    event.hash = event_hash(prev_hash, event)
    return str(event.hash)


@dataclass(frozen=True)
class ChainBreak:
    """The first place a tenant's chain does not hold, and what that suggests happened."""

    seq: int
    # "hash mismatch", "gap", "prev_hash mismatch", "head mismatch", "anchor mismatch",
    # "unreadable row" or "record mismatch"
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason} ({self.detail})"


@dataclass(frozen=True)
class UnreadableRow:
    """An event row the database holds but that cannot be read (a corrupt value); its seq as
    stored, which may itself be what is corrupt."""

    seq: Any
    problem: str


@dataclass(frozen=True)
class RecordCheckResult:
    """What a RecordCheck found among the events it was given."""

    # Events whose record matched the digest they carry.
    matched: int = 0
    # Events written before digests: nothing to compare.
    without_digest: int = 0
    # seq -> why that event's record does not match its digest.
    mismatches: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordCheck:
    """How verification recomputes the digests of the records that events of one type describe.
    Offered by the app that owns the records (`register_record_check` in its AppConfig.ready)."""

    # For what verify_audit prints: "execution records".
    records: str
    # (tenant id, events of the type in seq order) -> what it found.
    check: Callable[[int, Sequence[AuditEvent]], RecordCheckResult]


_RECORD_CHECKS: dict[str, RecordCheck] = {}
# Events handed to a RecordCheck at once.
RECORD_CHECK_BATCH = 500


def register_record_check(event_type: str, record_check: RecordCheck) -> None:
    """Have verification recompute the record digests of `event_type` events with `record_check`."""
    _RECORD_CHECKS[event_type] = record_check


@dataclass(frozen=True)
class ChainWalk:
    """What walking a stretch of a chain found: its first break (if any), the last event that
    still linked, and the `after` of the newest `audit.purged` event on the way."""

    chain_break: ChainBreak | None
    last_seq: int
    last_hash: str
    last_purge: Any = None


def walk_links(events: Iterable[AuditEvent | UnreadableRow], after_seq: int, after_hash: str) -> ChainWalk:
    """Check that `events` (in seq order) continue a chain whose last event was `after_seq` with
    hash `after_hash`; stops at the first broken link."""
    expected_seq, prev_hash, last_purge = after_seq + 1, after_hash, None
    for event in events:
        found = _link_break(event, expected_seq, prev_hash)
        if found is not None:
            return ChainWalk(found, expected_seq - 1, prev_hash, last_purge)
        assert isinstance(event, AuditEvent)  # an UnreadableRow is always a break
        if event.type == "audit.purged":
            last_purge = event.after
        prev_hash = event.hash
        expected_seq += 1
    return ChainWalk(None, expected_seq - 1, prev_hash, last_purge)


def _link_break(event: AuditEvent | UnreadableRow, expected_seq: int, prev_hash: str) -> ChainBreak | None:
    seq = event.seq
    if not isinstance(seq, int) or isinstance(seq, bool):
        if isinstance(event, UnreadableRow) and seq is None:
            return ChainBreak(expected_seq, "unreadable row", f"the next row cannot be read: {event.problem}")
        return ChainBreak(expected_seq, "unreadable row", f"the seq of the next row is {seq!r}, not a number")
    if seq < expected_seq:
        return ChainBreak(seq, "anchor mismatch", f"event {seq} is before the chain's start")
    if seq != expected_seq:
        return ChainBreak(expected_seq, "gap", f"event {expected_seq} is missing; next is {seq}")
    if isinstance(event, UnreadableRow):
        return ChainBreak(seq, "unreadable row", event.problem)
    if event.prev_hash != prev_hash:
        return ChainBreak(seq, "prev_hash mismatch", "the event does not follow the one before it")
    if not isinstance(event.occurred_at, datetime):
        # SQLite's reading of a time that is not one.
        return ChainBreak(seq, "unreadable row", f"occurred_at cannot be read (it is {event.occurred_at!r})")
    try:
        recomputed = event_hash(prev_hash, event)
    except (TypeError, ValueError, AttributeError, OverflowError) as error:
        # A value of a type its column cannot hold (bytes for text, a number for a time).
        return ChainBreak(seq, "unreadable row", f"a value has the wrong type ({described(error)})")
    if recomputed != event.hash:
        return ChainBreak(seq, "hash mismatch", "the event's fields were changed")
    return None


# Events read per query while verifying.
_READ_CHUNK = 2000


def events_in_seq_order(
    tenant: Tenant | int, *, after_seq: int | None = None, through_seq: int | None = None
) -> Generator[AuditEvent | UnreadableRow, None, None]:
    """The tenant's events in seq order (optionally only after_seq+1..through_seq), ending with an
    UnreadableRow at the first row that cannot be read (reading stops there: a walk reports the
    chain broken at that row). verify_audit and the retention purge both read through this."""
    events = AuditEvent.objects.filter(tenant=tenant).order_by("seq")
    if after_seq is not None:
        events = events.filter(seq__gt=after_seq)
    if through_seq is not None:
        events = events.filter(seq__lte=through_seq)
    after = None
    while True:
        try:
            for event in (events if after is None else events.filter(seq__gt=after)).iterator(_READ_CHUNK):
                after = event.seq
                yield event
            return
        except Exception as error:
            if not cannot_read(error):
                raise
        # Which row it was: the chunk that failed, one row at a time (on PostgreSQL a chunk fails
        # as a whole), then chunks again.
        rest = events if after is None else events.filter(seq__gt=after)
        for pk in rest.values_list("pk", flat=True)[:_READ_CHUNK]:
            try:
                event = AuditEvent.objects.get(pk=pk)
            except Exception as error:
                if not cannot_read(error):
                    raise
                yield UnreadableRow(_stored_seq(pk), unreadable_columns(AuditEvent, pk) or described(error))
                return
            after = event.seq
            yield event


def _stored_seq(pk: int) -> Any:
    """The seq of an event row as stored; None when that too cannot be read."""
    try:
        return AuditEvent.objects.filter(pk=pk).values_list("seq", flat=True).first()
    except Exception as error:
        if not cannot_read(error):
            raise
        return None


class _RecordVerifier:
    """Hands the events a RecordCheck covers, once their links held, to it in batches."""

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.pending: list[AuditEvent] = []
        self.matched: dict[str, int] = {}
        self.without_digest: dict[str, int] = {}
        self.first_mismatch: ChainBreak | None = None

    def watch(self, events: Iterable[AuditEvent | UnreadableRow]) -> Iterator[AuditEvent | UnreadableRow]:
        """Pass `events` on; stops early once a record does not match."""
        for event in events:
            yield event
            # Only here once the walk took the event as linked (it stops reading at a break).
            if isinstance(event, AuditEvent) and event.type in _RECORD_CHECKS:
                self.pending.append(event)
                if len(self.pending) >= RECORD_CHECK_BATCH:
                    self._check_pending()
                    if self.first_mismatch is not None:
                        return

    def finish(self) -> ChainBreak | None:
        self._check_pending()
        return self.first_mismatch

    def _check_pending(self) -> None:
        by_type: dict[str, list[AuditEvent]] = {}
        for event in self.pending:
            by_type.setdefault(event.type, []).append(event)
        self.pending = []
        for event_type, events in by_type.items():
            record_check = _RECORD_CHECKS[event_type]
            found = record_check.check(self.tenant_id, events)
            self.matched[record_check.records] = self.matched.get(record_check.records, 0) + found.matched
            undigested = self.without_digest.get(record_check.records, 0) + found.without_digest
            self.without_digest[record_check.records] = undigested
            for seq, detail in found.mismatches.items():
                if self.first_mismatch is None or seq < self.first_mismatch.seq:
                    self.first_mismatch = ChainBreak(seq, "record mismatch", detail)


@dataclass(frozen=True)
class ChainAnchor:
    """Where a tenant's chain starts: after seq 0 (GENESIS_HASH) until a purge moves it."""

    seq: int = 0
    hash: str = GENESIS_HASH


def chain_anchor(head: AuditChainHead | None) -> ChainAnchor:
    if head is None or not head.anchored_seq:
        return ChainAnchor()
    return ChainAnchor(head.anchored_seq, head.anchored_hash)


class UnreadableHead(Exception):
    """The tenant's chain head holds a value that cannot be read, or one of the wrong type: where
    the chain starts and ends cannot be known, so nothing in it can be vouched for."""

    def __init__(self, chain_break: ChainBreak) -> None:
        super().__init__(str(chain_break))
        self.chain_break = chain_break


# The head's columns, what they must hold, and how the operator is told otherwise.
_HEAD_VALUES = (
    ("last_seq", int, "last seq", "a number"),
    ("last_hash", str, "last hash", "text"),
    ("anchored_seq", int, "anchored seq", "a number"),
    ("anchored_hash", str, "anchored hash", "text"),
)


def read_chain_head(tenant: Tenant | int) -> AuditChainHead | None:
    """The tenant's chain head (None before its first event). Raises UnreadableHead, breaking the
    chain just past its last stored event, when a value in it cannot be read or has the wrong type."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    try:
        head = AuditChainHead.objects.filter(tenant_id=tenant_id).first()
    except Exception as error:
        if not cannot_read(error):
            raise
        problem = unreadable_columns(AuditChainHead, tenant_id) or described(error)
        raise UnreadableHead(_head_break(tenant_id, f"the head cannot be read: {problem}")) from error
    if head is None:
        return None
    for attname, kind, name, kind_name in _HEAD_VALUES:
        value = getattr(head, attname)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise UnreadableHead(_head_break(tenant_id, f"the head's {name} is {value!r}, not {kind_name}"))
    return head


def _head_break(tenant_id: int, detail: str) -> ChainBreak:
    last = AuditEvent.objects.filter(tenant_id=tenant_id).aggregate(last=Max("seq"))["last"]
    # (A seq that is itself corrupt sorts anywhere; the head's problem is the news then.)
    return ChainBreak(last + 1 if isinstance(last, int) else 1, "head mismatch", detail)


@dataclass(frozen=True)
class ChainReport:
    """What verifying a tenant found: the first break (None if the chain holds) and, per kind of
    record covered by digests, how many matched and how many events predate digests."""

    chain_break: ChainBreak | None
    records_matched: dict[str, int] = field(default_factory=dict)
    records_without_digest: dict[str, int] = field(default_factory=dict)


def verify_chain(tenant: Tenant) -> ChainBreak | None:
    """Walk the tenant's events in seq order from its anchor; return the first broken link, or
    None if it holds."""
    return verify_tenant(tenant).chain_break


def verify_tenant(tenant: Tenant | int) -> ChainReport:
    """Walk the tenant's events in seq order from its anchor, recomputing each event's hash and
    the digest of each record an event describes; report the first break."""
    try:
        head = read_chain_head(tenant)
    except UnreadableHead as unreadable:
        return ChainReport(unreadable.chain_break)
    anchor = chain_anchor(head)
    records = _RecordVerifier(tenant if isinstance(tenant, int) else tenant.pk)
    walk = walk_links(records.watch(events_in_seq_order(tenant)), anchor.seq, anchor.hash)
    record_break = records.finish()
    found = [b for b in (walk.chain_break, record_break) if b is not None]
    chain_break = min(found, key=lambda b: b.seq) if found else _end_break(head, anchor, walk)
    return ChainReport(chain_break, records.matched, records.without_digest)


def _end_break(head: AuditChainHead | None, anchor: ChainAnchor, walk: ChainWalk) -> ChainBreak | None:
    """Whether the head and the anchor agree with the chain the walk read to its end."""
    last_seq = walk.last_seq
    head_seq = head.last_seq if head else 0
    if head_seq != last_seq:
        return ChainBreak(
            min(head_seq, last_seq) + 1, "head mismatch", f"the head says {head_seq} events, the table has {last_seq}"
        )
    if head is not None and last_seq and head.last_hash != walk.last_hash:
        return ChainBreak(last_seq, "head mismatch", "the last event is not the one the head recorded")
    if anchor.seq and not _purge_names_anchor(walk.last_purge, anchor):
        return ChainBreak(anchor.seq, "anchor mismatch", "no audit.purged event records this anchor")
    return None


def _purge_names_anchor(purge_after: Any, anchor: ChainAnchor) -> bool:
    return (
        isinstance(purge_after, dict)
        and purge_after.get("through_seq") == anchor.seq
        and purge_after.get("anchored_hash") == anchor.hash
    )
