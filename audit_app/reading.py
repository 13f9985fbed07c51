"""Readers of the audit history see every event, including those a writer defers.

Flow runs answer first and are recorded after (flows_app.run_records); flows_app sits above
audit_app, so it registers how to settle a tenant's deferred records here in its
AppConfig.ready(), and every reader of events calls `settle_before_reading` first.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from tenants.models import Tenant


@dataclass(frozen=True)
class Unrecorded:
    """A tenant's runs that a reader left pending: how many, and the time of the oldest."""

    runs: int
    since: datetime | None


# What the readers of the current request left unrecorded, for the page to say
# (audit_app.context_processors); audit_app.middleware starts every request without it.
UNRECORDED_IN_REQUEST: ContextVar[Unrecorded | None] = ContextVar("unrecorded_runs", default=None)


DeferredSettler = Callable[[Tenant | int], Unrecorded | None]
_settlers: list[DeferredSettler] = []


def register_deferred_settler(settler: DeferredSettler) -> None:
    """Called once from a writer's AppConfig.ready(): how to settle a tenant's deferred records."""
    if settler not in _settlers:
        _settlers.append(settler)


def settle_before_reading(tenant: Tenant | int) -> Unrecorded | None:
    """Settle `tenant`'s deferred records before reading its events; what a backlog leaves
    unsettled is returned (and kept for the page's notice), None when nothing is left."""
    left: Unrecorded | None = None
    for settler in _settlers:
        left = settler(tenant) or left
    return left


def unrecorded_headers(unrecorded: Unrecorded | None) -> dict[str, str]:
    """HTTP headers that tell an API client or a download what it does not hold yet."""
    if unrecorded is None:
        return {}
    headers = {"X-Unrecorded-Runs": str(unrecorded.runs)}
    if unrecorded.since:
        headers["X-Unrecorded-Since"] = unrecorded.since.isoformat()
    return headers
