"""The webhook outbox: flow runs insert deliveries; workers send them, retry them, and give up on them.

Delivery is at-least-once. A row is claimed with a lease (`locked_until`) before it is sent, so several
worker processes never send the same row at the same time; a worker that dies mid-send leaves the row
to be claimed again when its lease runs out, and a receiver may then see it twice (the X-Actions-Delivery
header is the same on every attempt, for de-duplication).

Settings (read with defaults, none required):
- WEBHOOK_MAX_ATTEMPTS (6): attempts before a delivery is marked failed.
- WEBHOOK_TIMEOUT_SECONDS, WEBHOOK_CONNECT_TIMEOUT_SECONDS, WEBHOOK_MAX_RESPONSE_BYTES: see http_pinned.
- WEBHOOK_ALLOWED_PRIVATE_NETWORKS: see ssrf.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.db import OperationalError, connections, router, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.secret_box import SecretDecryptError, decrypt_secret, encrypt_repeated_secret
from flows_app.models import Binding, DeliveryStatus, WebhookDelivery
from flows_app.outbound.http_pinned import DEFAULT_TIMEOUT_SECONDS, post_pinned
from flows_app.outbound.signing import delivery_headers
from flows_app.outbound.ssrf import Resolver, TargetUnresolvable, UnsafeURL, check_url_shape, resolve_and_check
from tenants.models import Tenant

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 6
# Delay after the 1st, 2nd, … failed attempt; the last one repeats if WEBHOOK_MAX_ATTEMPTS is raised.
RETRY_DELAYS_SECONDS = (10, 30, 120, 600, 3600)
# ±20 %, so receivers that failed together are not all retried in the same second.
RETRY_JITTER = 0.2
# Name resolution is not bounded by the HTTP timeout; this is what a lease allows for it per delivery.
_RESOLVE_ALLOWANCE_SECONDS = 5
# What a lease keeps in hand beyond the batch's own worst case: one more delivery and the writing
# of its outcome. Also how long a killed worker's batch waits less than it would otherwise.
_RECORD_ALLOWANCE_SECONDS = 5
_LAST_ERROR_LENGTH = 500
_SQLITE_LOCK_RETRIES = 40

_Result = TypeVar("_Result")

_jitter_source = secrets.SystemRandom()


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str
    # Retrying cannot help: the URL is refused, or its secrets can no longer be decrypted.
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def delivery_values(
    *,
    tenant: Tenant,
    binding: Binding | None,
    action_slug: str,
    flow_slug: str,
    trigger: str,
    transaction_id: str,
    url: str,
    signing_secret: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """The outbox row for one POST by field attname, for a flow run's write batch
    (core.row_insert; fields left out take their defaults). Touches no network.

    A URL that fails the shape check is still recorded, as failed with the reason, so the operator sees it
    in the delivery log; the flow run itself must not fail because of it.
    """
    # The check reads WEBHOOK_ALLOWED_PRIVATE_NETWORKS for literal addresses: part of the cache key.
    allowed = tuple(getattr(settings, "WEBHOOK_ALLOWED_PRIVATE_NETWORKS", None) or ())
    url_display, refused = _url_shape(url, allowed)
    return {
        "tenant_id": tenant.pk,
        "binding_id": binding.pk if binding is not None else None,
        "action_slug": action_slug,
        "flow_slug": flow_slug,
        "trigger": trigger,
        "transaction_id": transaction_id or "",
        "encrypted_url": encrypt_repeated_secret(url, scope=tenant.pk),
        "url_display": url_display[:300],
        "encrypted_signing_secret": encrypt_repeated_secret(signing_secret, scope=tenant.pk) if signing_secret else "",
        "body": body,
        "status": DeliveryStatus.FAILED if refused else DeliveryStatus.PENDING,
        "last_error": f"Not sent: {refused}"[:_LAST_ERROR_LENGTH] if refused else "",
    }


@functools.lru_cache(maxsize=1024)
def _url_shape(url: str, allowed_private_networks: tuple[str, ...]) -> tuple[str, str]:
    """(what the delivery log shows of `url`, why it is refused or ""). Cached: a binding sends to
    the same URL on every run. `allowed_private_networks` is not read here; it is the setting the
    check reads, passed so that changing it misses the cache."""
    try:
        return check_url_shape(url).origin, ""
    except UnsafeURL as unsafe:
        return _unchecked_origin(url), str(unsafe)


def deliver_due(*, limit: int = 50, now: datetime | None = None, resolver: Resolver | None = None) -> int:
    """Claim up to `limit` due deliveries, send each once, record the outcome; return how many were sent.

    Safe to run in several processes at once. `now` lets tests move the clock; `resolver` (default
    socket.getaddrinfo) lets tests say what a host name resolves to.
    """
    round_now = now or timezone.now()
    lease_seconds = _lease_seconds(limit)
    # The random microseconds make the lease value this round's own claim token.
    lease_until = round_now + timedelta(seconds=lease_seconds, microseconds=secrets.randbelow(1_000_000))
    claimed_ids = _claim_due(limit, round_now, lease_until)
    if not claimed_ids:
        return 0
    rows = _retry_while_sqlite_is_locked(
        lambda: list(
            WebhookDelivery.objects.filter(pk__in=claimed_ids, locked_until=lease_until).order_by(
                "next_attempt_at", "pk"
            )
        )
    )
    # Stop before the lease could run out under us, so no other worker can claim a row we are still sending.
    send_until = time.monotonic() + lease_seconds - _lease_margin_seconds()
    sent = 0
    for position, row in enumerate(rows):
        if time.monotonic() > send_until:
            _release([later.pk for later in rows[position:]], lease_until)
            break
        try:
            attempt = _attempt_delivery(row, resolver)
        except Exception:
            # A bug must not strand the rest of the batch under a lease; the row is retried like a failure.
            logger.exception("Webhook delivery %s failed unexpectedly", row.pk)
            attempt = AttemptResult(None, "Internal error while sending; will retry.")
        _record_attempt(row, attempt, now=now, lease_until=lease_until)
        sent += 1
    return sent


def deliveries_for_binding(binding: Binding, limit: int = 50) -> QuerySet[WebhookDelivery]:
    """The latest deliveries of this attachment (across the flow's revisions), newest first, for a delivery log.

    The encrypted URL and secret are not loaded: the log shows `url_display` only.
    """
    return (
        WebhookDelivery.objects.filter(binding__key=binding.key, binding__revision__flow_id=binding.revision.flow_id)
        .defer("encrypted_url", "encrypted_signing_secret")
        .order_by("-created_at", "-pk")[:limit]
    )


def retry_delay(attempts_made: int) -> timedelta:
    """How long to wait after `attempts_made` failed attempts: 10 s, 30 s, 2 min, 10 min, 1 h (±20 %)."""
    base = RETRY_DELAYS_SECONDS[min(max(attempts_made, 1), len(RETRY_DELAYS_SECONDS)) - 1]
    return timedelta(seconds=base * _jitter_source.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER))


def max_attempts() -> int:
    return max(1, int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))


def _claim_due(limit: int, now: datetime, lease_until: datetime) -> list[int]:
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) & (
        Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    )
    database = router.db_for_write(WebhookDelivery)
    if connections[database].features.has_select_for_update_skip_locked:
        # PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
        with transaction.atomic(using=database):
            claimed_ids = list(
                WebhookDelivery.objects.using(database)
                .select_for_update(skip_locked=True)
                .filter(due)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:limit]
            )
            WebhookDelivery.objects.using(database).filter(pk__in=claimed_ids).update(locked_until=lease_until)
        return claimed_ids
    # SQLite has no row locks; the database serialises writes, so an UPDATE that still requires the row to
    # be due is the claim: of two workers racing for a row, the second updates nothing.
    due_rows = WebhookDelivery.objects.using(database).filter(due)
    candidate_ids = _retry_while_sqlite_is_locked(
        lambda: list(due_rows.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    )

    def claim(pk: int) -> bool:
        return _retry_while_sqlite_is_locked(lambda: due_rows.filter(pk=pk).update(locked_until=lease_until)) == 1

    return [pk for pk in candidate_ids if claim(pk)]


def _release(delivery_ids: list[int], lease_until: datetime) -> None:
    unclaimed = WebhookDelivery.objects.filter(pk__in=delivery_ids, locked_until=lease_until)
    _retry_while_sqlite_is_locked(lambda: unclaimed.update(locked_until=None))


def _attempt_delivery(row: WebhookDelivery, resolver: Resolver | None) -> AttemptResult:
    try:
        url = decrypt_secret(row.encrypted_url)
        signing_secret = decrypt_secret(row.encrypted_signing_secret) if row.encrypted_signing_secret else ""
    except SecretDecryptError:
        return AttemptResult(
            None, "The stored URL or signing secret can no longer be decrypted (encryption key changed?).", True
        )
    try:
        # Checked again at send time: the name may resolve somewhere else than when the flow was saved.
        checked = resolve_and_check(url, resolver=resolver)
    except UnsafeURL as unsafe:
        return AttemptResult(None, f"Refused, not sent: {unsafe}", permanent=True)
    except TargetUnresolvable as unresolvable:
        return AttemptResult(None, str(unresolvable))
    raw_body = json.dumps(row.body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    headers = delivery_headers(delivery_id=row.pk, signing_secret=signing_secret, raw_body=raw_body)
    outcome = post_pinned(checked, body=raw_body, headers=headers)
    return AttemptResult(outcome.status_code, outcome.error)


def _record_attempt(
    row: WebhookDelivery, attempt: AttemptResult, *, now: datetime | None, lease_until: datetime
) -> None:
    recorded_at = now or timezone.now()
    attempts = row.attempts + 1
    changes: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": attempt.status_code,
        "last_error": attempt.error[:_LAST_ERROR_LENGTH],
        "locked_until": None,
    }
    if attempt.delivered:
        changes.update(status=DeliveryStatus.DELIVERED, delivered_at=recorded_at, last_error="")
    elif attempt.permanent:
        changes.update(status=DeliveryStatus.FAILED)
    elif attempts >= max_attempts():
        gave_up = f"Gave up after {attempts} attempts. Last: {attempt.error}"
        changes.update(status=DeliveryStatus.FAILED, last_error=gave_up[:_LAST_ERROR_LENGTH])
    else:
        changes.update(next_attempt_at=recorded_at + retry_delay(attempts))
    updated = _retry_while_sqlite_is_locked(
        lambda: WebhookDelivery.objects.filter(pk=row.pk, locked_until=lease_until).update(**changes)
    )
    if not updated:
        logger.warning("Webhook delivery %s: lease lost before its outcome was recorded", row.pk)


def _retry_while_sqlite_is_locked(operation: Callable[[], _Result]) -> _Result:
    """Run one short statement, retrying briefly while SQLite reports a lock.

    A file database waits for its busy timeout, but in shared-cache mode (Django's in-memory test database,
    shared between threads) SQLite answers "database table is locked" at once instead of waiting. Losing the
    update that records a sent delivery would mean sending it again, so wait here instead.
    """
    for attempt in range(1, _SQLITE_LOCK_RETRIES + 1):
        try:
            return operation()
        except OperationalError as error:
            is_sqlite_lock = connections[router.db_for_write(WebhookDelivery)].vendor == "sqlite" and (
                "locked" in str(error)
            )
            if not is_sqlite_lock or attempt == _SQLITE_LOCK_RETRIES:
                raise
            time.sleep(min(0.05, 0.005 * attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _longest_delivery_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)) + _RESOLVE_ALLOWANCE_SECONDS


def _lease_margin_seconds() -> float:
    return _longest_delivery_seconds() + _RECORD_ALLOWANCE_SECONDS


def _lease_seconds(limit: int) -> float:
    """How long a round's claim lasts: every delivery of the batch at its slowest, plus two margins.
    It is also how long a killed worker's batch waits before another worker sends it (with the
    defaults and --limit 50, about 9 minutes; --limit 10, about 2)."""
    return _lease_margin_seconds() * 2 + limit * _longest_delivery_seconds()


def _unchecked_origin(url: str) -> str:
    # Only for the log line of a refused URL: never the path or query (secrets) or user-info (passwords).
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}"[:100] if parts.scheme else "(not a URL)"
    except ValueError:
        return "(not a URL)"
