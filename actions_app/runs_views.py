"""Run history of one action: its last executions with 24 h health, one execution's detail, and
which execution a replay in the test harness may reuse."""

from __future__ import annotations

import json

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from actions_app.health import health_for
from actions_app.models import Action, ActionKind
from flows_app.models import ActionExecution, Flow
from flows_app.run_records import settle_for_reading
from tenants.access import TenantAccess, get_visible_or_404, tenant_view, visible
from tenants.http import HtmxHttpRequest, parse_count

HISTORY_SIZE = 50


def _executions(access: TenantAccess, action: Action) -> QuerySet[ActionExecution]:
    """Executions of `action` in the tenant, limited to flows the operator may see (runs still
    pending are settled first)."""
    settle_for_reading(access.tenant)
    flows = visible(access, "view_flow", Flow.objects.all())
    return ActionExecution.objects.filter(tenant=access.tenant, action=action, flow__in=flows)


def replayable_execution(access: TenantAccess, action: Action, execution_id: str) -> ActionExecution | None:
    """The execution of `action` named by a replay link, if the operator may see it (its flow
    included), else None: an unknown or foreign id simply opens the harness without a replay."""
    pk = parse_count(execution_id)
    if action.kind != ActionKind.CUSTOM or pk is None:
        return None
    return _executions(access, action).filter(pk=pk).first()


@tenant_view
def action_runs(request: HtmxHttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    executions = _executions(access, action).select_related("flow").defer("masked_input", "logs", "result")
    context = {
        "access": access,
        "tenant": access.tenant,
        "action": action,
        "executions": list(executions[:HISTORY_SIZE]),
        "health": health_for([action.pk], durations=True)[action.pk],
        "history_size": HISTORY_SIZE,
    }
    template = "actions_app/runs.html"
    if request.htmx and request.htmx.target == "action-health":
        template += "#health"  # the action page loads its health summary from here
    return render(request, template, context)


@tenant_view
def execution_detail(request: HttpRequest, access: TenantAccess, action_slug: str, execution_id: int) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    execution = _executions(access, action).select_related("flow").filter(pk=execution_id).first()
    if execution is None:
        raise Http404("No such execution")
    context = {
        "access": access,
        "tenant": access.tenant,
        "action": action,
        "execution": execution,
        "masked_input": json.dumps(execution.masked_input, indent=2, sort_keys=True, ensure_ascii=False),
        "result": json.dumps(execution.result, indent=2, sort_keys=True, ensure_ascii=False)
        if execution.result is not None
        else "",
        "can_replay": action.kind == ActionKind.CUSTOM,
    }
    return render(request, "actions_app/runs_detail.html", context)
