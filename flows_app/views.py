from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from flows_app.models import Binding, Flow
from flows_app.triggers import FLOW_SLOTS
from tenants.access import TenantAccess, get_visible_or_404, tenant_view, visible


@tenant_view
def flow_list(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    flows = (
        visible(access, "view_flow", Flow.objects.all())
        .select_related("current_revision")
        .annotate(attached=Count("current_revision__bindings", filter=Q(current_revision__bindings__enabled=True)))
        .order_by("kind", "slug")
    )
    return render(request, "flows_app/flow_list.html", {"access": access, "tenant": access.tenant, "flows": flows})


@tenant_view
def flow_detail(request: HttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    flow = get_visible_or_404(access, "view_flow", Flow.objects.select_related("current_revision"), slug=flow_slug)
    bindings = (
        Binding.objects.filter(revision=flow.current_revision)
        .select_related("action", "pinned_version")
        .order_by("trigger", "position")
    )
    slots = [(trigger, [b for b in bindings if b.trigger == trigger]) for trigger in FLOW_SLOTS[flow.kind]]
    context = {"access": access, "tenant": access.tenant, "flow": flow, "slots": slots}
    return render(request, "flows_app/flow_detail.html", context)
