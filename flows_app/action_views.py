from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.http import require_http_methods

from actions_app.catalogue import CatalogueQuery, latest_versions_for, search_catalogue
from actions_app.models import Action, ActionKind, ActionVersion
from actions_app.schema_forms import UnsupportedSchema, build_config_form
from actions_app.triggers import ALL_TRIGGERS
from core.http import HtmxHttpRequest
from flows_app.action_editor_views import action_editor
from flows_app.action_health import health_for
from flows_app.action_usage import with_attached_count
from flows_app.models import Binding, Flow
from flows_app.run_records import settle_for_reading
from tenants.access import TenantAccess, get_visible_or_404, tenant_view, visible
from tenants.pages import render_tenant_page

PAGE_SIZE = 50


@tenant_view
def action_list(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    query = CatalogueQuery.from_params(request.GET)
    actions = search_catalogue(with_attached_count(visible(access, "view_action", Action.objects.all())), query)
    page = Paginator(actions, PAGE_SIZE).get_page(request.GET.get("page"))
    latest = latest_versions_for(list(page.object_list))
    settle_for_reading(access.tenant)
    health = health_for(action.pk for action in page.object_list)
    context = {
        "query": query,
        "page": page,
        "rows": [(action, latest.get(action.pk), health[action.pk]) for action in page.object_list],
        "kinds": ActionKind.values,
        "triggers": ALL_TRIGGERS,
        "can_create": access.can("create_action"),
    }
    partial = "results" if request.htmx and not request.htmx.boosted else None
    return render_tenant_page(request, access, "actions_app/action_list.html", context, partial=partial)


@tenant_view
@require_http_methods(["GET", "POST"])
def action_detail(request: HtmxHttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    if action.kind == ActionKind.CUSTOM:
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return action_editor(request, access, action)
    versions = list(action.versions.select_related("author"))
    chosen = _chosen_version(versions, request.GET.get("version") or request.POST.get("version"))
    config_form, schema_problems, config_ok = None, [], False
    if chosen is not None:
        try:
            data = request.POST if request.method == "POST" else None
            config_form = build_config_form(chosen.config_schema, data=data, template=action.template_slug)
            config_ok = data is not None and not config_form.row_change_requested and config_form.is_valid()
        except UnsupportedSchema as unsupported:
            schema_problems = unsupported.problems
    context = {
        "action": action,
        "versions": versions,
        "chosen": chosen,
        "config_form": config_form,
        "config_ok": config_ok,
        "schema_problems": schema_problems,
        "attachments": Binding.objects.where_attached(action, visible(access, "view_flow", Flow.objects.all())),
        "can_attach": visible(access, "change_flow", Flow.objects.all()).exists(),
    }
    partial = "config-form" if request.htmx and request.htmx.target == "config-form" else None
    return render_tenant_page(request, access, "actions_app/action_detail.html", context, partial=partial)


def _chosen_version(versions: list[ActionVersion], label: str | None) -> ActionVersion | None:
    if not label:
        return versions[0] if versions else None
    for version in versions:
        if version.version == label:
            return version
    raise Http404("No such version")
