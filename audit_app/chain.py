"""Tamper evidence for audit events: each tenant's events form a hash chain.

Event n of a tenant stores `seq = n`, `prev_hash` = the hash of event n-1 (GENESIS_HASH for the
first) and `hash = sha256(prev_hash + canonical_event(event))`. The tenant's AuditChainHead keeps
the last seq and hash, so removing the chain's tail shows too. Anyone who can rewrite the table
can also recompute the hashes; the chain makes tampering evident, it does not prevent it.

A retention purge (audit_app.retention) removes events 1..N and anchors the chain: the head keeps
(anchored_seq = N, anchored_hash = hash of event N), the chain is checked from N+1 against that
hash, and the newest `audit.purged` event must name the same anchor, so moving the anchor by hand
to hide a deleted prefix shows as well.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from audit_app.models import AuditChainHead, AuditEvent

if TYPE_CHECKING:
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
    # "hash mismatch", "gap", "prev_hash mismatch", "head mismatch" or "anchor mismatch"
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason} ({self.detail})"


@dataclass(frozen=True)
class ChainWalk:
    """What walking a stretch of a chain found: its first break (if any), the last event that
    still linked, and the `after` of the newest `audit.purged` event on the way."""

    chain_break: ChainBreak | None
    last_seq: int
    last_hash: str
    last_purge: Any = None


def walk_links(events: Iterable[AuditEvent], after_seq: int, after_hash: str) -> ChainWalk:
    """Check that `events` (in seq order) continue a chain whose last event was `after_seq` with
    hash `after_hash`; stops at the first broken link."""
    expected_seq, prev_hash, last_purge = after_seq + 1, after_hash, None
    for event in events:
        found: ChainBreak | None = None
        if event.seq < expected_seq:
            found = ChainBreak(event.seq, "anchor mismatch", f"event {event.seq} is before the chain's start")
        elif event.seq != expected_seq:
            found = ChainBreak(expected_seq, "gap", f"event {expected_seq} is missing; next is {event.seq}")
        elif event.prev_hash != prev_hash:
            found = ChainBreak(event.seq, "prev_hash mismatch", "the event does not follow the one before it")
        elif event_hash(prev_hash, event) != event.hash:
            found = ChainBreak(event.seq, "hash mismatch", "the event's fields were changed")
        if found is not None:
            return ChainWalk(found, expected_seq - 1, prev_hash, last_purge)
        if event.type == "audit.purged":
            last_purge = event.after
        prev_hash = event.hash
        expected_seq += 1
    return ChainWalk(None, expected_seq - 1, prev_hash, last_purge)


@dataclass(frozen=True)
class ChainAnchor:
    """Where a tenant's chain starts: after seq 0 (GENESIS_HASH) until a purge moves it."""

    seq: int = 0
    hash: str = GENESIS_HASH


def chain_anchor(head: AuditChainHead | None) -> ChainAnchor:
    if head is None or not head.anchored_seq:
        return ChainAnchor()
    return ChainAnchor(head.anchored_seq, head.anchored_hash)


def verify_chain(tenant: Tenant) -> ChainBreak | None:
    """Walk the tenant's events in seq order from its anchor; return the first broken link, or
    None if it holds."""
    head = AuditChainHead.objects.filter(tenant=tenant).first()
    anchor = chain_anchor(head)
    events = AuditEvent.objects.for_tenant(tenant).order_by("seq").iterator(chunk_size=2000)
    walk = walk_links(events, anchor.seq, anchor.hash)
    if walk.chain_break is not None:
        return walk.chain_break
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
