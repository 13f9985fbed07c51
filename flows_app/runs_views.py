"""Run history of one flow: its transaction × trigger runs, filtered and paged, and one transaction's trace."""

from __future__ import annotations

from functools import partial

from django.http import Http404, HttpRequest, HttpResponse

from actions_app.triggers import FLOW_SLOTS
from flows_app.models import ActionExecution, Flow
from flows_app.run_history import OUTCOMES, RunFilters, read_history, run_page
from flows_app.run_records import settle_for_reading
from tenants.access import TenantAccess, get_visible_or_404, tenant_view
from tenants.pages import render_tenant_page


@tenant_view
def flow_runs(request: HttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    flow = get_visible_or_404(access, "view_flow", Flow.objects.all(), slug=flow_slug)
    filters = RunFilters.from_params(request.GET, triggers=FLOW_SLOTS[flow.kind], by_revision=True)
    settle_for_reading(flow.tenant_id)
    executions = ActionExecution.objects.filter(flow=flow)
    page, problems = read_history(filters, request.GET.get("cursor", ""), partial(run_page, executions))
    context = {
        "flow": flow,
        "filters": filters,
        "problems": problems,
        "triggers": FLOW_SLOTS[flow.kind],
        "outcomes": OUTCOMES,
        "page": page,
    }
    return render_tenant_page(request, access, "flows_app/runs.html", context, status=400 if problems else 200)


@tenant_view
def transaction_trace(request: HttpRequest, access: TenantAccess, flow_slug: str, transaction_id: str) -> HttpResponse:
    flow = get_visible_or_404(access, "view_flow", Flow.objects.all(), slug=flow_slug)
    settle_for_reading(access.tenant)
    executions = list(
        ActionExecution.objects.filter(flow=flow, transaction_id=transaction_id)
        .select_related("action")
        .order_by("occurred_at", "position", "id")
    )
    if not executions:
        raise Http404("No such transaction")
    context = {
        "flow": flow,
        "transaction_id": transaction_id,
        "executions": executions,
    }
    return render_tenant_page(request, access, "flows_app/runs_transaction.html", context)
