"""The tenant's audit retention: shown to every member, changed by owners only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from audit_app.forms import RetentionForm
from audit_app.retention import InvalidRetention, retention_days, set_retention
from core.http import HtmxHttpRequest
from tenants.access import TenantAccess, tenant_view
from tenants.pages import render_tenant_page
from tenants.roles import Role


def can_change_retention(access: TenantAccess) -> bool:
    """Retention decides how much history survives, including the trail of what admins did, so
    only owners change it (and never below MIN_RETENTION_DAYS)."""
    return access.role is not None and access.role.includes(Role.OWNER)


def _describe(days: int | None) -> str:
    return "forever" if days is None else f"{days} days"


def _render(
    request: HtmxHttpRequest, access: TenantAccess, form: RetentionForm, days: int | None, *, saved: bool = False
) -> HttpResponse:
    context = {
        "form": form,
        "retention_days": days,
        "can_change_retention": can_change_retention(access),
        "saved": saved,
    }
    # htmx swaps only 2xx answers, so the partial with its errors comes back as 200; a plain form
    # post gets the whole page with 422.
    status = 422 if form.errors and not request.htmx else 200
    partial = "retention" if request.htmx else None
    return render_tenant_page(request, access, "audit_app/retention.html", context, partial=partial, status=status)


@tenant_view
@require_http_methods(["GET", "POST"])
def retention(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    if access.membership is None:
        # A single-object grant (a contractor) sees that object, not the tenant's settings.
        raise Http404("No such page")
    days = retention_days(access.tenant)
    if request.method == "GET":
        return _render(request, access, RetentionForm.for_current(days), days)
    if not can_change_retention(access):
        raise PermissionDenied("Your role does not allow this (change audit retention): ask an owner.")
    form = RetentionForm(request.POST)
    if form.is_valid():
        try:
            days = set_retention(access.tenant, form.retention_days, acting=access.acting)
        except InvalidRetention as invalid:
            form.add_error("days", str(invalid))
    if form.errors:
        return _render(request, access, form, days)
    if request.htmx:
        return _render(request, access, RetentionForm.for_current(days), days, saved=True)
    messages.success(request, f"Audit events are now kept {_describe(days)}.")
    return redirect("audit:retention", tenant_slug=access.tenant.slug)
