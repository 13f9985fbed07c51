"""Audit endpoint of the management API (contract §9): the tenant's events, newest first."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import ConfigDict

from audit_app.exports import event_as_dict
from audit_app.models import AuditEvent
from audit_app.queries import AuditQuery, Cursor, InvalidAuditQuery, keyset_page
from audit_app.reading import settle_before_reading, unrecorded_headers
from core.api_errors import ApiError
from core.api_paging import CURSOR_DESCRIPTION, DEFAULT_LIMIT, LIMIT_DESCRIPTION, page_size
from core.api_types import Text
from tenants.api_auth import request_token
from tenants.api_docs import responses, scope_required

router = Router(tags=["audit"])


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 4211,
                    "occurred_at": "2025-01-31T14:30:00.123000+00:00",
                    "type": "flow.action_published",
                    "actor": {"kind": "token", "id": "3f9a1c2b7d40", "name": "deploy bot"},
                    "subject": {
                        "action": "risk-gate",
                        "version": "0.2.0",
                        "flow": None,
                        "revision": None,
                        "trigger": None,
                        "target": None,
                    },
                    "before": {"status": "draft"},
                    "after": {"status": "published"},
                    "request": {"ip": "203.0.113.9", "user_agent": "curl/8.5", "request_id": "b1946ac9"},
                    "transaction_id": None,
                }
            ]
        }
    )

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
    next: str | None = Field(description="Cursor of the next (older) page, or null on the last page.")


@router.get(
    "",
    response=responses({200: AuditPage}, 400, 403, 422),
    summary="The tenant's audit events, newest first, a keyset page at a time",
    **scope_required("audit:read"),
)
def list_events(
    request: HttpRequest,
    response: HttpResponse,
    type: list[Text] = Query([], description="Event types (repeatable), e.g. action.version_saved."),  # noqa: B008
    action: Text = Query("", description="Action slug."),  # noqa: B008
    flow: Text = Query("", description="Flow slug."),  # noqa: B008
    actor: Text = Query("", description="Actor name or id."),  # noqa: B008
    outcome: Text = Query("", description="Run outcome kind of flow.run events."),  # noqa: B008
    since: Text = Query("", description="ISO 8601 date-time; naive means UTC."),  # noqa: B008
    until: Text = Query("", description="ISO 8601 date-time; naive means UTC."),  # noqa: B008
    q: Text = Query("", description="Words in the event's subject or snapshots."),  # noqa: B008
    cursor: Text = Query("", description=CURSOR_DESCRIPTION),  # noqa: B008
    limit: int = Query(DEFAULT_LIMIT, description=LIMIT_DESCRIPTION),
) -> dict[str, Any]:
    """The token's tenant's audit events, newest first, filtered as on the console's audit page; 400
    names a filter or `cursor` that cannot be understood. Scope `audit:read`.

    Flow runs are recorded in the background, normally within a second. When recording has fallen
    behind, headers `X-Unrecorded-Runs` (how many) and `X-Unrecorded-Since` (the oldest's time)
    say which runs the answer does not hold yet."""
    token = request_token(request)
    # The declared parameters document the endpoint; the query is read the same way as the page's.
    query = AuditQuery.from_params(request.GET)
    try:
        query.raise_problems()
        position = Cursor.decode(cursor) if cursor else None
    except InvalidAuditQuery as invalid:
        raise ApiError(400, "invalid_query", "The filters or cursor are invalid.", invalid.problems) from None
    size = page_size(limit)
    for header, value in unrecorded_headers(settle_before_reading(token.tenant)).items():
        response[header] = value
    events = query.apply(AuditEvent.objects.for_tenant(token.tenant))
    page = keyset_page(events, position, size)
    return {"items": [event_as_dict(e) for e in page.events], "next": page.older.encode() if page.older else None}
