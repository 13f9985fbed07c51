"""Writing audit events. Every write in the product calls `record` inside its own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.http import HttpRequest

from audit_app.models import EVENT_TYPES, AuditEvent

if TYPE_CHECKING:
    from tenants.models import ApiToken, Tenant


@dataclass(frozen=True)
class Actor:
    """Who did something: an operator, an API token or the platform itself."""

    kind: str
    id: str = ""
    name: str = ""

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls("user", str(user.pk), user.get_username())

    @classmethod
    def for_token(cls, token: ApiToken) -> Actor:
        return cls("token", token.key_id, token.name)

    @classmethod
    def system(cls, name: str = "platform") -> Actor:
        return cls("system", "", name)


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> RequestMeta:
        if request is None:
            return cls()
        return cls(
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            request_id=getattr(request, "request_id", ""),
        )


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is set by the load balancer, whose address the
    # deployment translates into REMOTE_ADDR (see README, production notes).
    return request.META.get("REMOTE_ADDR") or None


class UnknownEventType(ValueError):
    pass


def record(
    *,
    tenant: Tenant,
    event_type: str,
    actor: Actor,
    meta: RequestMeta | None = None,
    action_slug: str = "",
    action_version: str = "",
    flow_slug: str = "",
    flow_revision: int | None = None,
    trigger: str = "",
    target: str = "",
    before: Any = None,
    after: Any = None,
    transaction_id: str = "",
) -> AuditEvent:
    """Append one audit event. Must run inside the transaction of the change it describes,
    so the change and its event land together or not at all."""
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(event_type)
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("audit.record must run inside transaction.atomic()")
    meta = meta or RequestMeta()
    return AuditEvent.objects.create(
        tenant=tenant,
        type=event_type,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        action_slug=action_slug,
        action_version=action_version,
        flow_slug=flow_slug,
        flow_revision=flow_revision,
        trigger=trigger,
        target=target,
        before=before,
        after=after,
        ip=meta.ip,
        user_agent=meta.user_agent,
        request_id=meta.request_id,
        transaction_id=transaction_id,
    )
