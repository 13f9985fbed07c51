"""Run history of one flow: recent transaction × trigger runs, and one transaction's trace."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Min, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from flows_app.models import ActionExecution, Flow
from flows_app.run_records import settle_for_reading
from tenants.access import TenantAccess, get_visible_or_404, tenant_view

RECENT_RUNS = 50
# The outcome a run shows when its executions disagree, most telling first.
OUTCOME_PRIORITY = ("block", "error", "redirect", "demand_mfa")


def _run_outcome(row: dict[str, Any]) -> str:
    for outcome in OUTCOME_PRIORITY:
        if row[outcome]:
            return outcome
    return "continue"


def recent_runs(flow: Flow, limit: int = RECENT_RUNS) -> list[dict[str, Any]]:
    """The flow's latest runs, one row per transaction and trigger, newest first, in one query
    (after settling the tenant's pending runs)."""
    settle_for_reading(flow.tenant_id)
    rows = (
        ActionExecution.objects.filter(flow=flow)
        .order_by()
        .values("transaction_id", "trigger")
        .annotate(
            started=Min("occurred_at"),
            executions=Count("id"),
            revision=Max("revision_number"),
            duration=Sum("duration_ms"),
            **{outcome: Count("id", filter=Q(outcome=outcome)) for outcome in OUTCOME_PRIORITY},
        )
        .order_by("-started", "-transaction_id")[:limit]
    )
    return [{**row, "outcome": _run_outcome(row)} for row in rows]


@tenant_view
def flow_runs(request: HttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    flow = get_visible_or_404(access, "view_flow", Flow.objects.all(), slug=flow_slug)
    context = {"access": access, "tenant": access.tenant, "flow": flow, "runs": recent_runs(flow), "limit": RECENT_RUNS}
    return render(request, "flows_app/runs.html", context)


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
        "access": access,
        "tenant": access.tenant,
        "flow": flow,
        "transaction_id": transaction_id,
        "executions": executions,
    }
    return render(request, "flows_app/runs_transaction.html", context)
