"""The delete pages of a custom action and a flow (contract §14): a GET says exactly what deleting
would do (or what stands in the way), to every member; the POST of its button deletes, for owners."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from actions_app.models import Action
from core.http import HtmxHttpRequest
from flows_app.deleting import CannotDelete, action_delete_refusal, delete_action, delete_flow, flow_delete_refusal
from flows_app.models import Flow
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view, visible
from tenants.pages import render_tenant_page


@tenant_view
@require_http_methods(["GET", "POST"])
def action_delete(request: HtmxHttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    """Confirm, then delete a custom action no current flow revision uses (the POST: owners only)."""
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    if request.method == "POST":
        require_object_perm(access, "delete_action", action)
    refusal = action_delete_refusal(action)
    if request.method == "POST" and refusal is None:
        try:
            delete_action(action, acting=access.acting)
        except CannotDelete as refused:
            refusal = refused
        else:
            messages.success(request, f"Deleted the action {action.slug}; its history stays in the audit log.")
            return redirect(reverse("actions:list", kwargs={"tenant_slug": access.tenant.slug}))
    viewable = set(visible(access, "view_flow", Flow.objects.all()).values_list("slug", flat=True))
    context = {
        "action": action,
        "refusal": refusal,
        "can_delete": access.has_perm("delete_action", action),
        "blocking_flows": [(use, use.slug in viewable) for use in refusal.blocking_flows] if refusal else [],
        "version_count": action.versions.count(),
    }
    status = 409 if request.method == "POST" and refusal is not None else 200
    return render_tenant_page(request, access, "actions_app/action_delete.html", context, status=status)


@tenant_view
@require_http_methods(["GET", "POST"])
def flow_delete(request: HtmxHttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    """Confirm, then delete a flow that is not the tenant's built-in one (the POST: owners only)."""
    flow = get_visible_or_404(access, "view_flow", Flow.objects.select_related("current_revision"), slug=flow_slug)
    if request.method == "POST":
        require_object_perm(access, "delete_flow", flow)
    refusal = flow_delete_refusal(flow)
    if request.method == "POST" and refusal is None:
        try:
            delete_flow(flow, acting=access.acting)
        except CannotDelete as refused:
            refusal = refused
        else:
            messages.success(request, f"Deleted the flow {flow.slug}; its history stays in the audit log.")
            return redirect(reverse("flows:list", kwargs={"tenant_slug": access.tenant.slug}))
    context = {
        "flow": flow,
        "refusal": refusal,
        "can_delete": access.has_perm("delete_flow", flow),
        "revision_count": flow.revisions.count(),
    }
    status = 409 if request.method == "POST" and refusal is not None else 200
    return render_tenant_page(request, access, "flows_app/flow_delete.html", context, status=status)
