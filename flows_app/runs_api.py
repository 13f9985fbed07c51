"""Run history endpoint of the management API: a flow's executions, newest first, filtered as on
the console's run pages and paged by the same keyset cursors (flows_app.run_history)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from actions_app.models import Action
from actions_app.triggers import FLOW_SLOTS
from audit_app.reading import unrecorded_headers
from core.api_errors import ApiError
from core.api_paging import CURSOR_DESCRIPTION, DEFAULT_LIMIT, LIMIT_DESCRIPTION, page_size
from core.api_types import Text
from flows_app.models import ActionExecution, Flow
from flows_app.run_history import BadCursor, RunFilters, execution_page
from flows_app.run_records import settle_for_reading
from tenants.api_auth import request_token
from tenants.api_docs import responses, scope_required

router = Router(tags=["flows"])


class ExecutionItem(Schema):
    id: int
    occurred_at: str
    transaction_id: str
    revision: int
    trigger: str
    position: int = Field(description="1 for the slot's first binding, as the console numbers them.")
    action: str
    version: str
    outcome: str = Field(description="continue, block, demand_mfa, redirect, or error.")
    duration_ms: float
    error: dict[str, str] | None
    on_error_applied: str | None


class ExecutionPage(Schema):
    items: list[ExecutionItem]
    next: str | None = Field(description="Cursor of the next (older) page, or null on the last page.")


def _item(execution: ActionExecution) -> dict[str, Any]:
    return {
        "id": execution.pk,
        "occurred_at": execution.occurred_at.isoformat(),
        "transaction_id": execution.transaction_id,
        "revision": execution.revision_number,
        "trigger": execution.trigger,
        "position": execution.position + 1,
        "action": execution.action.slug,
        "version": execution.action_version,
        "outcome": execution.outcome,
        "duration_ms": execution.duration_ms,
        "error": {"code": execution.error_code, "message": execution.error_message} if execution.error_code else None,
        "on_error_applied": execution.on_error_applied or None,
    }


@router.get(
    "/{slug}/executions",
    response=responses({200: ExecutionPage}, 400, 403, 404, 422),
    summary="A flow's executions, newest first, filtered, a keyset page at a time",
    **scope_required("flows:read"),
)
def list_executions(
    request: HttpRequest,
    response: HttpResponse,
    slug: Text,
    action: Text = Query("", description="Action slug: only this action's executions."),  # noqa: B008
    version: Text = Query("", description="A version of `action` (give `action` too)."),  # noqa: B008
    outcome: Text = Query("", description="continue, block, demand_mfa, redirect or error."),  # noqa: B008
    revision: Text = Query("", description="Flow revision number, e.g. 5."),  # noqa: B008
    trigger: Text = Query("", description="A trigger slot of the flow's kind."),  # noqa: B008
    since: Text = Query("", description="ISO 8601 date-time, included; naive means UTC."),  # noqa: B008
    until: Text = Query("", description="ISO 8601 date-time, included; naive means UTC."),  # noqa: B008
    cursor: Text = Query("", description=CURSOR_DESCRIPTION),  # noqa: B008
    limit: int = Query(DEFAULT_LIMIT, description=LIMIT_DESCRIPTION),
) -> dict[str, Any]:
    """Every execution of the flow's actions, newest first; 400 names each filter (or the `cursor`)
    that cannot be understood. Pages stay put while runs are recorded. Scope `flows:read`.

    Runs are recorded in the background; `X-Unrecorded-Runs` and `X-Unrecorded-Since` say which
    the answer does not hold yet, as for the audit log."""
    token = request_token(request)
    flow = Flow.objects.filter(tenant=token.tenant, slug=slug).first()
    if flow is None:
        raise ApiError(404, "not_found", f"No flow {slug!r} in this tenant.")
    size = page_size(limit)
    executions = ActionExecution.objects.filter(flow=flow).select_related("action")
    problems: list[dict[str, str]] = []
    versions = None
    if action:
        chosen = Action.objects.filter(tenant=token.tenant, slug=action).first()
        if chosen is None:
            problems.append({"field": "action", "message": f"No action {action[:80]!r} in this tenant."})
        else:
            executions = executions.filter(action=chosen)
            versions = list(chosen.versions.values_list("version", flat=True))
    elif version:
        problems.append({"field": "version", "message": "Versions belong to one action: give `action` too."})
    filters = RunFilters.from_params(request.GET, triggers=FLOW_SLOTS[flow.kind], versions=versions, by_revision=True)
    problems += filters.problems
    if problems:
        raise ApiError(400, "invalid_query", "The filters or cursor are invalid.", problems)
    for header, value in unrecorded_headers(settle_for_reading(token.tenant)).items():
        response[header] = value
    try:
        page = execution_page(executions, filters, cursor.strip(), size)
    except BadCursor as bad:
        raise ApiError(400, "invalid_query", "The filters or cursor are invalid.", bad.problems) from None
    return {"items": [_item(e) for e in page.rows], "next": page.next_cursor}
