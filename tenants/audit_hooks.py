"""How tenant writes and refusals reach the audit trail and the security log.

Audit events belong to a tenant, so audit_app sits above tenants and tenants cannot import it.
audit_app registers its writers here in its AppConfig.ready(). A tenant write still records its
event explicitly, in its own transaction; with no writer registered it refuses rather than go
unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest


@dataclass(frozen=True)
class AuditWriters:
    # audit_app.services.record: one event from EventDraft's fields, inside the caller's transaction.
    record: Callable[..., Any]
    # audit_app.security: a signed-in operator asked for a tenant they may not see.
    refused_tenant: Callable[..., None]
    # audit_app.security: an API request with a bearer token that is not a usable token.
    rejected_token: Callable[[HttpRequest, str], None]


_writers: AuditWriters | None = None


def register_audit_writers(writers: AuditWriters) -> None:
    """Called once, from audit_app's AppConfig.ready()."""
    global _writers
    _writers = writers


def audit_writers() -> AuditWriters:
    if _writers is None:
        raise ImproperlyConfigured("audit_app is not installed: tenant writes cannot be audited")
    return _writers


def record_event(**fields: Any) -> None:
    """Append one audit event (EventDraft's fields) inside the caller's transaction."""
    audit_writers().record(**fields)


def record_refused_tenant(request: HttpRequest, tenant_slug: str, *, tenant_exists: bool) -> None:
    audit_writers().refused_tenant(request, tenant_slug, tenant_exists=tenant_exists)


def record_rejected_token(request: HttpRequest, presented: str) -> None:
    audit_writers().rejected_token(request, presented)
