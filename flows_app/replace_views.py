"""Roll back and promote in the console (contract §14). A preview page shows, slot by slot, what
confirming would change (the revision diff) and anything that stands in the way, to every member;
its button writes it, for operators who may edit the flow. The form carries the revision the
preview was made against, so a flow saved meanwhile gets a fresh preview, never an overwrite."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.http import HtmxHttpRequest, parse_count
from flows_app.models import Flow
from flows_app.replacing import (
    NoSuchRevision,
    NothingToChange,
    NotPromotable,
    Replacement,
    ReplacementRefused,
    carry_out,
    plan_promote,
    plan_restore,
)
from flows_app.revision_views import diff_revisions
from flows_app.services import StaleRevision
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view, visible
from tenants.pages import render_tenant_page

TEMPLATE = "flows_app/replace_preview.html"


def _flow_or_404(access: TenantAccess, flow_slug: str) -> Flow:
    flows = Flow.objects.select_related("tenant", "current_revision__created_by")
    return get_visible_or_404(access, "view_flow", flows, slug=flow_slug)


def _posted_number(request: HtmxHttpRequest, name: str) -> int | None:
    return parse_count(request.POST.get(name, ""), max_digits=9)


def _confirm(request: HtmxHttpRequest, access: TenantAccess, plan: Replacement) -> tuple[HttpResponse | None, str, int]:
    """Write the plan if the form was made against the flow's current revision: (redirect, "", 302),
    or (None, why not, status) for the page to show with a fresh preview."""
    base = _posted_number(request, "base_revision")
    if base is None:
        return None, "This form did not say which revision it was previewed against; check the preview below.", 409
    try:
        revision = carry_out(plan, expected_revision=base, acting=access.acting)
    except StaleRevision as stale:
        by = plan.base.created_by.get_username() if plan.base.created_by else "the system"
        return (
            None,
            (
                f"{plan.flow.name} was saved since this preview was made (now r{stale.current.number}, by {by}). "
                "Nothing was changed: below is the difference as it is now; confirm again if it is still what you want."
            ),
            409,
        )
    except ReplacementRefused:
        return None, "Nothing was saved: the bindings listed below would not be accepted.", 422
    except NothingToChange as unchanged:
        return None, str(unchanged), 409
    messages.success(request, f"{plan.note} as revision {revision.number} of {plan.flow.slug}.")
    url = reverse("flows:revisions", kwargs={"tenant_slug": plan.flow.tenant.slug, "flow_slug": plan.flow.slug})
    return redirect(url), "", 302


def _confirm_or_preview(request: HtmxHttpRequest, access: TenantAccess, plan: Replacement, **page: Any) -> HttpResponse:
    """A POST writes the plan and redirects; a GET, or a POST that was refused, shows the preview."""
    notice, status = "", 200
    if request.method == "POST":
        done, notice, status = _confirm(request, access, plan)
        if done is not None:
            return done
    slots = diff_revisions(plan.flow.kind, plan.current, plan.incoming)
    context = {
        "flow": plan.flow,
        "plan": plan,
        "slots": slots,
        "change_count": sum(len(slot.changed) for slot in slots),
        "can_edit": access.has_perm("change_flow", plan.flow),
        "notice": notice,
        "before_label": f"Now (r{plan.base.number})",
        **page,
    }
    return render_tenant_page(request, access, TEMPLATE, context, status=status)


@tenant_view
@require_http_methods(["GET", "POST"])
def restore(request: HtmxHttpRequest, access: TenantAccess, flow_slug: str, revision_number: int) -> HttpResponse:
    """Preview restoring an earlier revision, then (POST, editors) make it the new revision."""
    flow = _flow_or_404(access, flow_slug)
    if request.method == "POST":
        require_object_perm(access, "change_flow", flow)
    try:
        plan = plan_restore(flow, revision_number)
    except NoSuchRevision as missing:
        raise Http404(str(missing)) from missing
    after = f"After restoring (r{revision_number})"
    return _confirm_or_preview(request, access, plan, mode="restore", after_label=after)


@tenant_view
@require_GET
def promote_pick(request: HtmxHttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    """Choose the flow of the same kind that `flow_slug`'s bindings would be promoted into."""
    return _pick_page(request, access, _flow_or_404(access, flow_slug))


def _pick_page(
    request: HtmxHttpRequest, access: TenantAccess, source: Flow, refusal: Exception | None = None, status: int = 200
) -> HttpResponse:
    targets = visible(access, "view_flow", Flow.objects.filter(kind=source.kind).exclude(pk=source.pk))
    rows = [(target, access.has_perm("change_flow", target)) for target in targets.select_related("current_revision")]
    context = {"flow": source, "targets": rows, "refusal": refusal}
    return render_tenant_page(request, access, "flows_app/promote_pick.html", context, status=status)


@tenant_view
@require_http_methods(["GET", "POST"])
def promote(request: HtmxHttpRequest, access: TenantAccess, flow_slug: str, target_slug: str) -> HttpResponse:
    """Preview promoting `flow_slug` into `target_slug`, then (POST, who may edit the target) do it."""
    source = _flow_or_404(access, flow_slug)
    target = _flow_or_404(access, target_slug)
    if request.method == "POST":
        require_object_perm(access, "change_flow", target)
    # The POST promotes the source revision that was previewed, even if the source moved on.
    posted_source = _posted_number(request, "source_revision") if request.method == "POST" else None
    try:
        plan = plan_promote(source, target, source_revision=posted_source)
    except NotPromotable as refused:
        return _pick_page(request, access, source, refused, status=422 if request.method == "POST" else 200)
    after = f"After promoting ({source.slug} r{plan.source.number})"
    return _confirm_or_preview(request, access, plan, mode="promote", source=source, after_label=after)
