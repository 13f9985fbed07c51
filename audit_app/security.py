"""The platform security log: failed console sign-ins, requests for a tenant the operator is not
a member of, rejected API tokens. Platform staff read it at /platform/security-log/.

These never go into a tenant's audit: the tenant asked for is not necessarily the operator's own,
and a tenant must not learn who probed it (nor another tenant's slug from its own log). So the log
is one platform-wide table, and the slug asked for is kept as text.

Rate guard: whoever can send requests can write to this table, so each client address may add at
most SECURITY_LOG_PER_ADDRESS_PER_MINUTE rows a minute and the whole platform
SECURITY_LOG_PER_MINUTE; the last admitted row says that more may be dropped. The counters are the
fixed-window cache counters of core.rate_limits (Redis in production, shared by every app
server). A flood from many addresses is still capped by the platform-wide limit; what is dropped
is only the log row, never the refusal itself.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit_app.models import SECURITY_EVENT_KINDS, SecurityEvent
from core.http import client_ip
from core.rate_limits import count_hit

logger = logging.getLogger(__name__)

SECURITY_LOG_PER_ADDRESS_PER_MINUTE = 30
SECURITY_LOG_PER_MINUTE = 1000


def _admit(address: str | None) -> tuple[bool, str]:
    """Whether the rate guard lets one more row in, and a note for the last row it admits."""
    # With Redis away each process guards on its own, rather than dropping events or letting a flood in.
    from_address = count_hit(f"security-log:{address or 'unknown'}", 60, count_locally_if_down=True)
    if from_address > SECURITY_LOG_PER_ADDRESS_PER_MINUTE:
        return False, ""
    # Counted only for admitted rows, so one noisy address cannot use up everyone's share.
    overall = count_hit("security-log:all", 60, count_locally_if_down=True)
    if overall > SECURITY_LOG_PER_MINUTE:
        return False, ""
    if from_address == SECURITY_LOG_PER_ADDRESS_PER_MINUTE:
        return True, f"limit of {SECURITY_LOG_PER_ADDRESS_PER_MINUTE} events a minute from this address reached"
    if overall == SECURITY_LOG_PER_MINUTE:
        return True, f"platform-wide limit of {SECURITY_LOG_PER_MINUTE} events a minute reached"
    return True, ""


def record_security_event(
    kind: str,
    request: HttpRequest,
    *,
    username: str = "",
    user_id: int | None = None,
    tenant_slug: str = "",
    detail: str = "",
) -> SecurityEvent | None:
    """Append an entry to the platform security log; None when the rate guard dropped it. Never
    raises for a database error: the request it describes is refused either way."""
    if kind not in SECURITY_EVENT_KINDS:
        raise ValueError(f"Unknown security event kind {kind!r}")
    address = client_ip(request)
    admitted, note = _admit(address)
    if not admitted:
        return None
    if note:
        detail = f"{detail} ({note}; later ones this minute are not recorded)"
    try:
        # A savepoint, so a failed insert leaves a surrounding transaction usable.
        with transaction.atomic():
            return SecurityEvent.objects.create(
                kind=kind,
                username=username[:150],
                user_id=user_id,
                tenant_slug=tenant_slug[:80],
                ip=address,
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
                request_id=getattr(request, "request_id", "")[:64],
                path=request.path[:300],
                detail=detail[:300],
            )
    except DatabaseError:
        logger.exception("Could not write a %s security event", kind)
        return None


def record_failed_sign_in(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    """Receiver of django.contrib.auth's `user_login_failed`: one entry per failed attempt.

    django-axes listens to the same signal and counts the attempt; nothing here listens to axes'
    own `user_locked_out`, so a locked-out attempt is still one entry (saying it was locked out).
    """
    if request is None:
        return  # authenticate() without a request is not a sign-in to the console
    username = str(credentials.get("username") or "")
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first() if username else None
    if getattr(request, "axes_locked_out", False):
        detail = "locked out after repeated failures (django-axes)"
    elif user is None:
        detail = "unknown username"
    elif not user.is_active:
        detail = "inactive account"
    else:
        detail = "wrong password"
    record_security_event(
        "console.sign_in_failed", request, username=username, user_id=user.pk if user else None, detail=detail
    )


def record_refused_tenant(request: HttpRequest, tenant_slug: str, *, tenant_exists: bool) -> None:
    """A signed-in operator asked for a tenant they may not see (tenants.access answers 404)."""
    user: Any = request.user
    record_security_event(
        "console.cross_tenant_refused",
        request,
        username=user.get_username(),
        user_id=user.pk,
        tenant_slug=tenant_slug,
        detail="not a member of this tenant" if tenant_exists else "no such tenant",
    )


def record_rejected_token(request: HttpRequest, presented: str) -> None:
    """An API request whose bearer token is not a usable token. Only the token's public id is
    kept, never what followed it."""
    parts = presented.split("_", 2)
    if len(parts) == 3 and parts[0] == "acx" and parts[1]:
        detail = f"token {parts[1][:40]}: unknown, revoked, expired or wrong secret"
    else:
        detail = "not an acx_ token"
    record_security_event("api.token_rejected", request, detail=detail)


def security_log_cutoff(now: datetime | None = None) -> datetime:
    """Entries older than this are purged: SECURITY_LOG_RETENTION_DAYS (90 by default) back."""
    days = int(getattr(settings, "SECURITY_LOG_RETENTION_DAYS", 90))
    return (now or timezone.now()) - timedelta(days=days)


def purge_security_log(*, dry_run: bool = False, now: datetime | None = None) -> int:
    """Delete (or with dry_run count) security-log entries past the retention; returns how many.
    The log is evidence of probing, not of tenant changes, so it has no hash chain to keep."""
    expired = SecurityEvent.objects.filter(occurred_at__lt=security_log_cutoff(now))
    if dry_run:
        return expired.count()
    deleted, _ = expired.delete()
    return deleted
