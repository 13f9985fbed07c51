"""The flows list (with 24-hour run statistics), creating a flow, turning a flow on or off, and
the webhook delivery log of a binding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import CharField, Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST

from core.http import HtmxHttpRequest
from flows_app.duplicating import duplicate_flow, free_copy_slug
from flows_app.forms import DuplicateFlowForm, NewFlowForm
from flows_app.models import ActionExecution, Binding, Flow, FlowQuerySet
from flows_app.outbound.outbox import deliveries_for_binding
from flows_app.run_records import settle_for_reading
from flows_app.services import FlowSlugTaken, create_flow, set_flow_enabled
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view, visible
from tenants.models import Tenant
from tenants.pages import render_tenant_page

PAGE_SIZE = 50
STATS_WINDOW = timedelta(hours=24)
FAILED_OUTCOMES = ("block", "error")
SORTS = ("name", "-name", "failure", "-failure")
DEFAULT_SORT = "name"


@dataclass(frozen=True)
class FlowListQuery:
    """The list's state as it appears in the URL, cleaned of anything unknown."""

    sort: str = DEFAULT_SORT

    @classmethod
    def from_params(cls, params: Any) -> FlowListQuery:
        sort = params.get("sort", DEFAULT_SORT)
        return cls(sort=sort if sort in SORTS else DEFAULT_SORT)

    def as_params(self, **overrides: str) -> dict[str, str]:
        values = {"sort": self.sort, **overrides}
        return {key: value for key, value in values.items() if value and not (key == "sort" and value == DEFAULT_SORT)}


@dataclass(frozen=True)
class RunStats:
    """A flow's runs in the statistics window; see `run_stats` for what counts."""

    runs: int = 0
    failed: int = 0

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.runs if self.runs else None

    @property
    def failure_rate_label(self) -> str:
        """The rate as shown: "12.5 %" (one decimal), or "—" when the flow did not run in the window."""
        rate = self.failure_rate
        return "—" if rate is None else f"{rate * 100:.1f} %"


def run_stats(tenant: Tenant, flows: FlowQuerySet, since: datetime) -> dict[int, RunStats]:
    """Runs and failed runs of each of `flows` since `since`, by flow id, in one SQL query
    (one range scan of the tenant's executions, whatever the number of flows or executions).

    - A run is one trigger slot run for one transaction: the distinct (transaction_id, trigger)
      pairs among the flow's executions since `since`, however many actions ran in it.
    - A run failed when at least one of its executions had the outcome `block` or `error` (an
      error counts even when its binding's on_error let the run continue).
    - The failure rate is failed runs / runs; a flow with no runs has no rate ("—"), and sorts
      after every flow that ran, in both directions.

    The tenant's pending runs are settled first.
    """
    settle_for_reading(tenant)
    # "|" never occurs in a trigger name, so the concatenation names each pair exactly once.
    run_key = Concat("transaction_id", Value("|"), "trigger", output_field=CharField())
    rows = (
        ActionExecution.objects.filter(tenant=tenant, flow__in=flows.values("pk"), occurred_at__gte=since)
        .order_by()
        .values("flow")
        .annotate(
            runs=Count(run_key, distinct=True),
            failed=Count(run_key, distinct=True, filter=Q(outcome__in=FAILED_OUTCOMES)),
        )
    )
    return {row["flow"]: RunStats(row["runs"], row["failed"]) for row in rows}


def with_attached_count(flows: FlowQuerySet) -> FlowQuerySet:
    """Annotate each flow with the number of bindings in the revision it currently runs."""
    counts = (
        Binding.objects.filter(revision=OuterRef("current_revision"))
        .order_by()
        .values("revision")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return flows.annotate(attached=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0)))


@dataclass(frozen=True)
class FlowRow:
    flow: Flow
    stats: RunStats
    can_change: bool


def sorted_rows(rows: list[FlowRow], sort: str) -> list[FlowRow]:
    """`rows` come in name order; a failure-rate sort is stable, so equal rates stay by name."""
    if sort == "-name":
        return rows[::-1]
    if sort in ("failure", "-failure"):
        sign = 1 if sort == "failure" else -1
        return sorted(rows, key=lambda row: (row.stats.runs == 0, sign * (row.stats.failure_rate or 0)))
    return rows


@tenant_view
def flow_list(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    query = FlowListQuery.from_params(request.GET)
    flows = visible(access, "view_flow", Flow.objects.all())
    stats = run_stats(access.tenant, flows, since=timezone.now() - STATS_WINDOW)
    changeable = set(visible(access, "change_flow", Flow.objects.all()).values_list("pk", flat=True))
    rows = [
        FlowRow(flow, stats.get(flow.pk, RunStats()), flow.pk in changeable)
        for flow in with_attached_count(flows).order_by("name", "slug")
    ]
    page = Paginator(sorted_rows(rows, query.sort), PAGE_SIZE).get_page(request.GET.get("page"))
    confirm_slug = request.GET.get("confirm_disable", "")
    context = {
        "query": query,
        "page": page,
        "rows": page.object_list,
        "confirm_disable": next(
            (r.flow for r in rows if r.flow.slug == confirm_slug and r.flow.enabled and r.can_change), None
        ),
        "can_create": access.can("create_flow"),
    }
    partial = "results" if request.htmx and not request.htmx.boosted else None
    return render_tenant_page(request, access, "flows_app/flow_list.html", context, partial=partial)


@tenant_view
@require_http_methods(["GET", "POST"])
def flow_new(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    access.require("create_flow")
    form = NewFlowForm(request.POST or None, initial={"kind": request.GET.get("kind", "login")})
    if request.method == "POST" and form.is_valid():
        try:
            flow = create_flow(access.tenant, **form.flow_fields(), acting=access.acting)
        except FlowSlugTaken as taken:
            form.add_error("slug", str(taken))
        else:
            messages.success(request, f"Created {flow.name} ({flow.slug}) at revision 1. Attach actions to its slots.")
            return redirect("flows:detail", tenant_slug=access.tenant.slug, flow_slug=flow.slug)
    return render_tenant_page(request, access, "flows_app/flow_new.html", {"form": form})


@tenant_view
@require_http_methods(["GET", "POST"])
def flow_duplicate(request: HttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    """Copy a flow, bindings and all, as a new flow of the same kind (editors and above)."""
    source = get_visible_or_404(access, "view_flow", Flow.objects.select_related("current_revision"), slug=flow_slug)
    access.require("create_flow")
    initial = {"name": f"{source.name} (copy)", "slug": free_copy_slug(source)}
    form = DuplicateFlowForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            flow = duplicate_flow(source, **form.cleaned_data, acting=access.acting)
        except FlowSlugTaken as taken:
            form.add_error("slug", str(taken))
        else:
            # The revision comment names the revision copied, which may be newer than the one shown.
            copied = flow.current_revision
            count = Binding.objects.filter(revision=copied).count()
            note = copied.comment if copied else ""
            messages.success(request, f"{note} as {flow.name} with {count} action{'s' if count != 1 else ''}.")
            return redirect("flows:detail", tenant_slug=access.tenant.slug, flow_slug=flow.slug)
    bindings = Binding.objects.filter(revision=source.current_revision).count()
    context = {"flow": source, "form": form, "binding_count": bindings}
    return render_tenant_page(request, access, "flows_app/flow_duplicate.html", context)


@tenant_view
@require_POST
def flow_set_enabled(request: HttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    """Enable (`enabled=true`) or disable (`enabled=false`) a flow. Disabling asks first: without
    `confirm=yes` the operator is sent to the list's confirmation panel."""
    flow = get_visible_or_404(access, "view_flow", Flow.objects.all(), slug=flow_slug)
    require_object_perm(access, "change_flow", flow)
    wanted = request.POST.get("enabled")
    if wanted not in ("true", "false"):
        return HttpResponseBadRequest("Send enabled=true or enabled=false.")
    query = FlowListQuery.from_params(request.POST)
    list_url = reverse("flows:list", kwargs={"tenant_slug": access.tenant.slug})
    if wanted == "false" and flow.enabled and request.POST.get("confirm") != "yes":
        return redirect(f"{list_url}?{urlencode(query.as_params(confirm_disable=flow.slug))}")
    set_flow_enabled(flow, wanted == "true", acting=access.acting)
    if flow.enabled:
        messages.success(request, f"Enabled {flow.name}: new runs execute its actions again.")
    else:
        messages.success(request, f"Disabled {flow.name}: its triggers run no actions until you enable it again.")
    params = query.as_params()
    return redirect(f"{list_url}?{urlencode(params)}" if params else list_url)


@tenant_view
def delivery_log(request: HttpRequest, access: TenantAccess, flow_slug: str, binding_key: str) -> HttpResponse:
    """Webhook deliveries of one attachment (webhook-emit / slack-notify), newest first."""
    flow = get_visible_or_404(access, "view_flow", Flow.objects.all(), slug=flow_slug)
    try:
        key = uuid.UUID(binding_key)
    except ValueError:
        raise Http404("No such binding") from None
    binding = (
        Binding.objects.filter(revision__flow=flow, key=key)
        .select_related("action", "revision")
        .order_by("-revision__number")
        .first()
    )
    if binding is None:
        raise Http404("No such binding")
    context = {
        "flow": flow,
        "binding": binding,
        "deliveries": deliveries_for_binding(binding, limit=100),
    }
    return render_tenant_page(request, access, "flows_app/delivery_log.html", context)
