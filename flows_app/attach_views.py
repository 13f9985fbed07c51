""" "Attach to a flow…" from a template's page and a custom action's page. The form carries the
revision of each flow it offered; when the chosen flow was saved since, nothing is attached and the
page says so with everything typed kept, as the flow editor does (If-Match in the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from actions_app.models import Action, ActionVersion
from actions_app.schema_forms import ConfigForm, UnsupportedSchema, build_config_form, secret_paths
from core.http import HtmxHttpRequest, parse_count
from flows_app.attaching import AttachTarget, attach_action, attach_targets, published_versions
from flows_app.forms import AttachForm
from flows_app.models import Binding, Flow
from flows_app.services import BindingSpec, InvalidBindings, StaleRevision
from tenants.access import TenantAccess, get_visible_or_404, tenant_view, visible
from tenants.pages import render_tenant_page


def editable_flows(access: TenantAccess) -> list[Flow]:
    """The flows the operator may change, by name: where an action can be attached."""
    flows = Flow.objects.select_related("current_revision__created_by").order_by("name", "slug")
    return list(visible(access, "change_flow", flows))


@tenant_view
@require_http_methods(["GET", "POST"])
def attach(request: HtmxHttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    """Pick a compatible slot, a published version, its config and on_error; save as a new revision."""
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    flows = editable_flows(access)
    if not flows:
        raise PermissionDenied("Your role cannot change any flow, so it cannot attach actions.")
    versions = published_versions(action)
    params = request.POST if request.method == "POST" else request.GET
    version = next((v for v in versions if v.version == params.get("version")), versions[0] if versions else None)
    page = _AttachPage(request, action, versions, version, flows)
    if request.method != "POST" or not page.is_valid():
        return page.render(access)
    target, spec = page.chosen()
    expected = parse_count(request.POST.get(f"revision-{target.flow.slug}", ""), max_digits=9)
    try:
        revision = attach_action(
            target.flow,
            target.trigger,
            spec,
            expected_revision=expected if expected is not None else -1,
            acting=access.acting,
        )
    except StaleRevision as stale:
        page = _AttachPage(request, action, versions, version, editable_flows(access))
        page.is_valid()
        page.notice = _stale_notice(
            target.flow, stale, with_secrets=bool(version and secret_paths(version.config_schema))
        )
        return page.render(access, status=409)
    except InvalidBindings as invalid:
        page.add_service_errors(target, invalid.errors)
        return page.render(access)
    where = f"{target.trigger} of {target.flow.name}"
    messages.success(request, f"Attached {action.name} {spec.version} to {where} as revision {revision.number}.")
    return redirect("flows:detail", tenant_slug=access.tenant.slug, flow_slug=target.flow.slug)


def _stale_notice(flow: Flow, stale: StaleRevision, *, with_secrets: bool) -> str:
    by = stale.current.created_by.get_username() if stale.current.created_by else "the system"
    # Secrets are never sent back to the browser, so those are the one thing to type again.
    kept = (
        "what you typed is kept below, except secrets: type those again"
        if with_secrets
        else "what you typed is kept below"
    )
    return (
        f"{flow.name} was saved since you opened this page (now r{stale.current.number}, by {by}). "
        f"Nothing was attached; {kept}. Check the slot in the flow editor if you need to, then attach again."
    )


class _AttachPage:
    """The page's two forms (where/how, and the version's config form) for one request."""

    def __init__(
        self,
        request: HtmxHttpRequest,
        action: Action,
        versions: list[ActionVersion],
        version: ActionVersion | None,
        flows: list[Flow],
    ) -> None:
        data = request.POST if request.method == "POST" else None
        self.request, self.action, self.version, self.flows = request, action, version, flows
        self.targets: list[AttachTarget] = attach_targets(version, flows) if version else []
        initial = {"version": version.version if version else "", "target": request.GET.get("target", "")}
        self.form = AttachForm(
            data,
            initial=initial,
            versions=[v.version for v in versions],
            targets=[(t.value, t.label) for t in self.targets],
        )
        self.config_form: ConfigForm | None = None
        self.schema_problems: list[Any] = []
        if version is not None:
            try:
                self.config_form = build_config_form(version.config_schema, data=data, template=action.template_slug)
            except UnsupportedSchema as unsupported:
                self.schema_problems = unsupported.problems
        self.notice = ""

    def is_valid(self) -> bool:
        # Both forms are checked, so every mistake shows at once.
        form_ok = self.form.is_valid()
        config_ok = self.config_form is not None and self.config_form.is_valid()
        return bool(self.targets) and form_ok and config_ok

    def chosen(self) -> tuple[AttachTarget, BindingSpec]:
        assert self.version is not None and self.config_form is not None
        target = next(t for t in self.targets if t.value == self.form.cleaned_data["target"])
        spec = BindingSpec(
            action=self.action.slug,
            version=self.version.version,
            config=self.config_form.cleaned_config,
            on_error=self.form.cleaned_data["on_error"],
        )
        return target, spec

    def add_service_errors(self, target: AttachTarget, errors: dict[str, list[str]]) -> None:
        """InvalidBindings keys errors "<trigger>.<index>.<field>"; the new binding is the last
        index. Others are about actions already in the slot, to be fixed in the flow editor."""
        fields = {"version": "version", "action": "target", "on_error": "on_error"}
        # Not stale, so the revision this page showed is the one the new binding was appended to.
        new_index = Binding.objects.filter(revision=target.flow.current_revision, trigger=target.trigger).count()
        for key, found in errors.items():
            index, _, name = key.removeprefix(f"{target.trigger}.").partition(".")
            for message in found:
                if key == target.trigger:
                    self.form.add_error("target", message)
                elif index.isdigit() and int(index) < new_index:
                    self.form.add_error(
                        None,
                        f"Action #{int(index) + 1} already in {target.trigger}: {message} Fix it in the flow editor.",
                    )
                elif name.split(".")[0] in fields:
                    self.form.add_error(fields[name.split(".")[0]], message)
                else:
                    self.form.add_error(None, f"{name.capitalize()}: {message}" if name else message)

    def render(self, access: TenantAccess, status: int = 200) -> HttpResponse:
        chosen_target = self.form["target"].value() or ""
        context = {
            "action": self.action,
            "version": self.version,
            "form": self.form,
            "config_form": self.config_form,
            "schema_problems": self.schema_problems,
            "targets": self.targets,
            "flows": self.flows,
            # An Add row / Remove row press is no refusal: the page just shows the changed list.
            # A stale flow has its own notice: the form itself was fine.
            "refused": self.request.method == "POST"
            and not self.notice
            and not (self.config_form and self.config_form.row_change_requested),
            "notice": self.notice,
            "chosen_target": chosen_target,
        }
        return render_tenant_page(self.request, access, "flows_app/attach.html", context, status=status)
