"""Run history of one action: its last executions with 24 h health, one execution's detail, and
which execution a replay in the test harness may reuse."""

from __future__ import annotations

import json
from functools import partial

from django.http import HttpRequest, HttpResponse

from actions_app.models import Action, ActionKind
from actions_app.triggers import ALL_TRIGGERS
from core.http import HtmxHttpRequest, parse_count
from flows_app.action_health import health_for
from flows_app.execution_links import binding_of, event_of, execution_links, recorded_config
from flows_app.models import ActionExecution
from flows_app.run_history import (
    OUTCOMES,
    RunFilters,
    execution_page,
    executions_visible_to,
    read_history,
    visible_execution_or_404,
)
from tenants.access import TenantAccess, get_visible_or_404, tenant_view
from tenants.pages import render_tenant_page


def replayable_execution(access: TenantAccess, action: Action, execution_id: str) -> ActionExecution | None:
    """The execution of `action` named by a replay link, if the operator may see it (its flow
    included), else None: an unknown or foreign id simply opens the harness without a replay."""
    pk = parse_count(execution_id)
    if action.kind != ActionKind.CUSTOM or pk is None:
        return None
    return executions_visible_to(access, action).filter(pk=pk).first()


@tenant_view
def action_runs(request: HtmxHttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    versions = list(action.versions.order_by("-major", "-minor", "-patch").values_list("version", flat=True))
    filters = RunFilters.from_params(request.GET, triggers=ALL_TRIGGERS, versions=versions)
    executions = executions_visible_to(access, action).select_related("flow").defer("masked_input", "logs", "result")
    page, problems = read_history(filters, request.GET.get("cursor", ""), partial(execution_page, executions))
    context = {
        "action": action,
        "filters": filters,
        "problems": problems,
        "version_choices": versions,
        "triggers": ALL_TRIGGERS,
        "outcomes": OUTCOMES,
        "page": page,
        "health": health_for([action.pk], durations=True)[action.pk],
    }
    # The action page loads its health summary from here.
    region = "health" if request.htmx and request.htmx.target == "action-health" else None
    return render_tenant_page(
        request, access, "actions_app/runs.html", context, partial=region, status=400 if problems else 200
    )


@tenant_view
def execution_detail(request: HttpRequest, access: TenantAccess, action_slug: str, execution_id: str) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    execution = visible_execution_or_404(access, action, execution_id)
    context = {
        "action": action,
        "execution": execution,
        "links": execution_links(access.tenant.slug, execution),
        "config": recorded_config(execution),
        "binding": binding_of(execution),
        # Only members read the audit log (orchestration.audit_views.readable_events).
        "event": event_of(execution) if access.membership is not None else None,
        "masked_input": json.dumps(execution.masked_input, indent=2, sort_keys=True, ensure_ascii=False),
        "result": json.dumps(execution.result, indent=2, sort_keys=True, ensure_ascii=False)
        if execution.result is not None
        else "",
    }
    return render_tenant_page(request, access, "actions_app/runs_detail.html", context)
