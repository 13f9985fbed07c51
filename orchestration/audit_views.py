from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from audit_app.exports import csv_lines, jsonl_lines
from audit_app.models import EVENT_TYPES, AuditEvent, AuditEventQuerySet
from audit_app.queries import OUTCOMES, AuditQuery, Cursor, InvalidAuditQuery, event_diff, keyset_page
from audit_app.reading import UNRECORDED_IN_REQUEST, settle_before_reading, unrecorded_headers
from core.http import HtmxHttpRequest, parse_count
from flows_app.binding_diff import event_changes
from flows_app.execution_links import ExecutionLinks, execution_links, executions_of_events
from flows_app.models import ActionExecution, Flow, FlowRevision
from tenants.access import TenantAccess, tenant_view
from tenants.pages import render_tenant_page

PAGE_SIZE = 50


def readable_events(access: TenantAccess) -> AuditEventQuerySet:
    """The tenant's audit events for a member; none for an operator who holds only single-object
    grants (contract §1: every role reads the whole history, a contractor is not a member).
    Flow runs still pending are settled first, so their events are there."""
    if access.membership is None:
        return AuditEvent.objects.none()
    settle_before_reading(access.tenant)
    return AuditEvent.objects.for_tenant(access.tenant)


@tenant_view
@require_GET
def audit_log(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    query = AuditQuery.from_params(request.GET)
    problems = list(query.problems)
    try:
        cursor = Cursor.decode(request.GET["cursor"]) if request.GET.get("cursor") else None
    except InvalidAuditQuery as invalid:
        cursor, problems = None, problems + invalid.problems
    page = keyset_page(query.apply(readable_events(access)), cursor, PAGE_SIZE)
    executions = executions_of_events(access.tenant.pk, page.events)
    context = {
        "query": query,
        "page": page,
        # Each run's event beside the pages of its execution (one query for the whole page), each
        # change of a binding with what it changed.
        "rows": [
            (event, _links_of(access, executions.get(event.pk)), event_changes(event.before, event.after))
            for event in page.events
        ],
        "problems": problems,
        "newer_qs": query.query_string(page.newer) if page.newer else None,
        "older_qs": query.query_string(page.older) if page.older else None,
        "filters_qs": query.query_string(),
        "event_types": EVENT_TYPES,
        "outcomes": OUTCOMES,
    }
    partial = "results" if request.htmx and not request.htmx.boosted else None
    return render_tenant_page(request, access, "audit_app/audit_log.html", context, partial=partial)


@tenant_view
@require_GET
def event_detail(request: HttpRequest, access: TenantAccess, event_id: str) -> HttpResponse:
    pk = parse_count(event_id)
    event = readable_events(access).filter(pk=pk).first() if pk is not None else None
    if event is None:
        raise Http404("No such audit event")
    execution = executions_of_events(access.tenant.pk, [event]).get(event.pk)
    links = _links_of(access, execution)
    context = {
        "event": event,
        "execution": execution,
        "links": links,
        "trace_url": links.trace if links else _trace_url(access, event),
        "changes": event_changes(event.before, event.after),
        "revision": _revision_of(access, event),
        "diff": event_diff(event.before, event.after),
    }
    return render_tenant_page(request, access, "audit_app/event_detail.html", context)


def _links_of(access: TenantAccess, execution: ActionExecution | None) -> ExecutionLinks | None:
    return execution_links(access.tenant.slug, execution) if execution is not None else None


def _trace_url(access: TenantAccess, event: AuditEvent) -> str | None:
    """The trace of the event's transaction when its execution is not found (an event from before
    execution digests): by the flow's slug, as the event names it."""
    if not (event.transaction_id and event.flow_slug):
        return None
    return reverse("flows:transaction", args=[access.tenant.slug, event.flow_slug, event.transaction_id])


def _revision_of(access: TenantAccess, event: AuditEvent) -> FlowRevision | None:
    """The flow revision an event names (its note says why it was made), in the flow that has
    that slug now."""
    if not (event.flow_slug and event.flow_revision):
        return None
    return (
        FlowRevision.objects.filter(flow__in=Flow.objects.for_tenant(access.tenant), number=event.flow_revision)
        .filter(flow__slug=event.flow_slug)
        .select_related("flow", "created_by")
        .first()
    )


def _export(
    request: HttpRequest, access: TenantAccess, lines: Callable[[AuditEventQuerySet], Iterator[str]], suffix: str
) -> HttpResponse:
    query = AuditQuery.from_params(request.GET)
    if query.problems:
        # Exporting more than was asked for would be worse than exporting nothing.
        return HttpResponseBadRequest("; ".join(p["message"] for p in query.problems), content_type="text/plain")
    events = query.apply(readable_events(access)).order_by("-occurred_at", "-id")
    content_type = "text/csv; charset=utf-8" if suffix == "csv" else "application/x-ndjson; charset=utf-8"
    response = StreamingHttpResponse(lines(events), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-{access.tenant.slug}.{suffix}"'
    # A download has no page to show the backlog notice on (see settle_for_reading).
    for header, value in unrecorded_headers(UNRECORDED_IN_REQUEST.get()).items():
        response[header] = value
    # `tenant_view` is typed for HttpResponse; Django serves any HttpResponseBase alike.
    return cast(HttpResponse, response)


@tenant_view
@require_GET
def export_csv(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    return _export(request, access, csv_lines, "csv")


@tenant_view
@require_GET
def export_jsonl(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    return _export(request, access, jsonl_lines, "jsonl")
