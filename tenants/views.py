from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tenants.access import TenantAccess, tenant_view
from tenants.models import Tenant


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Straight to the Actions list when the operator has one tenant; otherwise a chooser."""
    tenants = list(Tenant.objects.for_member(request.user))
    # The header's tenant switcher submits ?tenant=<slug> (works without JavaScript).
    chosen = request.GET.get("tenant")
    if chosen and any(t.slug == chosen for t in tenants):
        return redirect("actions:list", tenant_slug=chosen)
    if len(tenants) == 1:
        return redirect("actions:list", tenant_slug=tenants[0].slug)
    return render(request, "tenants/choose_tenant.html", {"tenants": tenants})


@tenant_view
def tenant_home(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    return redirect("actions:list", tenant_slug=access.tenant.slug)
