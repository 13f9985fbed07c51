"""Audit endpoint of the management API (contract §9): the tenant's events, newest first."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema

from audit_app.exports import event_as_dict
from audit_app.models import AuditEvent
from audit_app.queries import AuditQuery, Cursor, InvalidAuditQuery, keyset_page
from tenants.api_auth import ApiError, require_scope

router = Router(tags=["audit"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class AuditActor(Schema):
    kind: str
    id: str
    name: str


class AuditSubject(Schema):
    action: str | None
    version: str | None
    flow: str | None
    revision: int | None
    trigger: str | None
    target: str | None


class AuditRequest(Schema):
    ip: str | None
    user_agent: str
    request_id: str


class AuditItem(Schema):
    id: int
    occurred_at: str
    type: str
    actor: AuditActor
    subject: AuditSubject
    before: Any
    after: Any
    request: AuditRequest
    transaction_id: str | None


class AuditPage(Schema):
    items: list[AuditItem]
    next: str | None


@router.get("", response=AuditPage, summary="The tenant's audit events, newest first, a keyset page at a time")
def list_events(
    request: HttpRequest,
    type: list[str] = Query([]),  # noqa: B008 - ninja declares a repeatable parameter this way
    action: str = "",
    flow: str = "",
    actor: str = "",
    outcome: str = "",
    since: str = "",
    until: str = "",
    q: str = "",
    cursor: str = "",
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    token = require_scope(request, "audit:read")
    # The declared parameters document the endpoint; the query is read the same way as the page's.
    query = AuditQuery.from_params(request.GET)
    try:
        query.raise_problems()
        position = Cursor.decode(cursor) if cursor else None
    except InvalidAuditQuery as invalid:
        raise ApiError(400, "invalid_query", "The filters or cursor are invalid.", invalid.problems) from None
    if limit < 1:
        raise ApiError(400, "invalid_query", "limit must be at least 1.", [{"field": "limit", "message": "Too small."}])
    events = query.apply(AuditEvent.objects.for_tenant(token.tenant))
    page = keyset_page(events, position, min(limit, MAX_LIMIT))
    return {"items": [event_as_dict(e) for e in page.events], "next": page.older.encode() if page.older else None}
