"""The custom-action editor: new action from a starter, save a version, live schema preview,
SDK types for the browser editor, and the test harness."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from actions_app.compiler import sdk_declarations
from actions_app.forms import ActionEditorForm, SecretForm, parse_schema_text
from actions_app.harness import HarnessRun, replay_comparison, run_in_harness
from actions_app.models import Action, ActionVersion
from actions_app.sample_inputs import sample_input
from actions_app.schema_forms import UnsupportedSchema, build_config_form, check_schema_supported
from actions_app.secrets import list_secrets
from actions_app.starters import STARTERS, STARTERS_BY_KEY
from actions_app.triggers import ALL_TRIGGERS
from actions_app.versioning import (
    CompileFailed,
    InvalidDraft,
    NothingChanged,
    VersionConflict,
    config_schema_problems,
    create_custom_action,
    derive_slug,
    free_slug,
    next_version_label,
    save_action_version,
)
from core.http import HtmxHttpRequest
from flows_app.action_runs_views import replayable_execution
from flows_app.bindings import stored_secrets
from flows_app.execution_links import binding_of, recorded_config
from flows_app.models import ActionExecution, Binding, Flow
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view, visible
from tenants.pages import render_tenant_page

TEST_CONFIG_PREFIX = "test-config"
# The Secrets panel's fields get ids of their own: the editor form beside it has a `name` too.
SECRET_FIELD_IDS = "secret-%s"


def editor_context(
    access: TenantAccess,
    form: ActionEditorForm,
    *,
    action: Action | None = None,
    latest: ActionVersion | None = None,
    diagnostics: list[Any] | None = None,
    conflict: VersionConflict | None = None,
) -> dict[str, Any]:
    """Everything the editor template needs, for a new action (`action` None) or an existing one."""
    schema = _schema_of(form, latest)
    trigger = latest.compatible_triggers[0] if latest and latest.compatible_triggers else ALL_TRIGGERS[1]
    can_edit = access.can("create_action") if action is None else access.has_perm("change_action", action)
    versions = list(action.versions.select_related("author", "published_by")) if action else []
    return {
        "action": action,
        "latest": latest,
        "form": form,
        "diagnostics": diagnostics or [],
        "conflict": conflict,
        "can_edit": can_edit,
        "can_test": (action is None and can_edit) or (action is not None and access.has_perm("test_action", action)),
        "can_publish": action is not None and access.has_perm("publish_action", action),
        "can_delete": action is not None and access.has_perm("delete_action", action),
        "next_versions": _next_versions(latest),
        "versions": versions,
        "attachments": Binding.objects.where_attached(action, visible(access, "view_flow", Flow.objects.all()))
        if action
        else [],
        "can_attach": action is not None and visible(access, "change_flow", Flow.objects.all()).exists(),
        "triggers": ALL_TRIGGERS,
        "harness_trigger": trigger,
        "harness_input": json.dumps(sample_input(trigger), indent=2),
        "harness_config_form": _harness_config_form(schema),
        "harness_run": None,
        "harness_target": "draft",
        "starters": STARTERS,
        **(secrets_panel(access, action) if action else {}),
    }


def secrets_panel(
    access: TenantAccess, action: Action, form: SecretForm | None = None, notice: str = ""
) -> dict[str, Any]:
    """The Secrets panel of a custom action: names and who set them when (never values), and the
    add-or-replace form for those who may change the action."""
    return {
        "secrets": list_secrets(action),
        "secret_form": form or SecretForm(auto_id=SECRET_FIELD_IDS),
        "can_change_secrets": access.has_perm("change_action", action),
        "secrets_notice": notice,
    }


def _schema_of(form: ActionEditorForm, latest: ActionVersion | None) -> Any:
    if form.is_bound:
        try:
            return parse_schema_text(form.data.get("config_schema", ""))
        except ValidationError:
            return None  # an unparsable schema simply gets no harness form
    return latest.config_schema if latest else json.loads(form.initial.get("config_schema") or "{}")


def _harness_config_form(
    schema: Any, data: Any = None, initial: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> Any:
    if not isinstance(schema, dict) or check_schema_supported(schema):
        return None
    return build_config_form(schema, data=data, initial=initial, prefix=TEST_CONFIG_PREFIX, stored_secrets=secrets)


def _replay_secrets(execution: ActionExecution | None) -> dict[str, Any]:
    """The stored secrets of the binding that ran `execution`: a replay's config form shows them
    as "stored" (never their values) and a blank secret field runs with them."""
    binding = binding_of(execution) if execution is not None else None
    return stored_secrets(binding) if binding is not None else {}


def _next_versions(latest: ActionVersion | None) -> dict[str, str]:
    current = latest.version if latest else None
    return {bump: next_version_label(current, bump) for bump in ("patch", "minor", "major")}


def _initial_from_version(version: ActionVersion) -> dict[str, Any]:
    return {
        "name": version.action.name,
        "slug": version.action.slug,
        "source": version.source,
        "compatible_triggers": version.compatible_triggers,
        "egress_hosts": "\n".join(version.egress_hosts),
        "config_schema": json.dumps(version.config_schema, indent=2),
        "base_version": version.version,
        "bump": "patch",
    }


@tenant_view
@require_http_methods(["GET", "POST"])
def action_new(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    access.require("create_action")
    starter = STARTERS_BY_KEY.get(request.GET.get("starter", ""))
    if request.method == "GET" and starter is None:
        return render_tenant_page(request, access, "actions_app/action_new.html", {"starters": STARTERS})
    if request.method == "GET":
        assert starter is not None
        form = ActionEditorForm(
            initial={
                "name": "" if starter.key == "empty" else starter.name,
                "source": starter.source,
                "compatible_triggers": starter.compatible_triggers,
                "config_schema": json.dumps(starter.config_schema, indent=2),
                "bump": "patch",
            }
        )
        return render_tenant_page(request, access, "actions_app/action_editor.html", editor_context(access, form))
    form = ActionEditorForm(request.POST)
    diagnostics: list[Any] = []
    if form.is_valid():
        derived = derive_slug(form.cleaned_data["name"])
        typed = form.cleaned_data["slug"].strip()
        # The slug that follows the name (the editor fills it in) is made free; one typed by hand is not.
        slug = free_slug(access.tenant, derived) if derived and typed in ("", derived) else typed
        try:
            outcome = create_custom_action(
                access.tenant,
                name=form.cleaned_data["name"],
                slug=slug,
                draft=form.draft(),
                save_anyway=form.cleaned_data["save_anyway"],
                acting=access.acting,
            )
        except InvalidDraft as error:
            form.add_domain_errors(error)
        except CompileFailed as failed:
            diagnostics = failed.diagnostics
        else:
            saved = _saved_message(outcome.version)
            if derived and slug != derived:
                saved += f" Its slug is {slug}: {derived} is taken."
            messages.success(request, saved)
            return redirect("actions:detail", tenant_slug=access.tenant.slug, action_slug=outcome.version.action.slug)
    context = editor_context(access, form, diagnostics=diagnostics)
    return render_tenant_page(request, access, "actions_app/action_editor.html", context, status=422)


def _saved_message(version: ActionVersion) -> str:
    suffix = " with TypeScript errors (save anyway)" if version.saved_with_errors else ""
    return f"Saved {version.action.slug} {version.version} as a draft{suffix}."


def action_editor(
    request: HttpRequest, access: TenantAccess, action: Action, *, secret_form: SecretForm | None = None
) -> HttpResponse:
    """A custom action's page: the editor opened on the latest version, and its Secrets panel
    (with `secret_form` when an add was refused without JavaScript: its errors, the name kept)."""
    latest = action.latest_version()
    form = ActionEditorForm(initial=_initial_from_version(latest) if latest else {}, editing_existing=True)
    context = editor_context(access, form, action=action, latest=latest)
    if secret_form is not None:
        context["secret_form"] = secret_form
    replayed = replayable_execution(access, action, request.GET.get("replay", ""))
    if replayed is not None:
        # A replay starts from what ran: the recorded version (while it exists) and config. The
        # recorded input keeps its masked secrets: a replay never reveals them.
        recorded = next((v for v in context["versions"] if v.version == replayed.action_version), None)
        schema = recorded.config_schema if recorded else _schema_of(form, latest)
        context.update(
            replayed=replayed,
            replay=replay_comparison(replayed, None, recorded.version if recorded else "draft"),
            harness_input=json.dumps(replayed.masked_input, indent=2, ensure_ascii=False),
            harness_trigger=replayed.trigger,
            harness_target=recorded.version if recorded else "draft",
            harness_config_form=_harness_config_form(
                schema, initial=recorded_config(replayed), secrets=_replay_secrets(replayed)
            ),
        )
    status = 422 if secret_form is not None else 200
    return render_tenant_page(request, access, "actions_app/action_editor.html", context, status=status)


@tenant_view
@require_POST
def action_save(request: HttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    require_object_perm(access, "change_action", action)
    latest = action.latest_version()
    form = ActionEditorForm(request.POST, editing_existing=True, initial={"name": action.name, "slug": action.slug})
    diagnostics: list[Any] = []
    conflict = None
    if form.is_valid():
        try:
            outcome = save_action_version(
                action,
                form.draft(),
                bump=form.cleaned_data["bump"],
                explicit_version=form.cleaned_data["version"] or None,
                base_version=form.cleaned_data["base_version"] or None,
                save_anyway=form.cleaned_data["save_anyway"],
                acting=access.acting,
            )
        except InvalidDraft as error:
            form.add_domain_errors(error)
        except CompileFailed as failed:
            diagnostics = failed.diagnostics
        except NothingChanged as unchanged:
            messages.info(request, f"No changes since {unchanged.latest.version}; nothing was saved.")
            return redirect("actions:detail", tenant_slug=access.tenant.slug, action_slug=action.slug)
        except VersionConflict as conflicting:
            conflict = conflicting
        else:
            messages.success(request, _saved_message(outcome.version))
            return redirect("actions:detail", tenant_slug=access.tenant.slug, action_slug=action.slug)
    context = editor_context(access, form, action=action, latest=latest, diagnostics=diagnostics, conflict=conflict)
    return render_tenant_page(
        request, access, "actions_app/action_editor.html", context, status=409 if conflict else 422
    )


@tenant_view
@require_POST
def schema_preview(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    """Live preview of the config form a schema produces, or its problems, as the operator types."""
    access.require("create_action")
    problems: list[Any] = []
    preview = None
    try:
        schema = parse_schema_text(request.POST.get("config_schema", ""))
        if not isinstance(schema, dict):
            problems = [{"path": "/", "message": "The config schema must be a JSON object."}]
        else:
            preview = build_config_form(schema, prefix="preview")
    except UnsupportedSchema as unsupported:
        problems = list(unsupported.problems)
    except ValidationError as error:
        problems = [{"path": "/", "message": " ".join(error.messages)}]
    return render(request, "actions_app/includes/schema_preview.html", {"preview": preview, "problems": problems})


@tenant_view
@require_POST
def sdk_types(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    """The Action SDK `.d.ts` for a config schema, for the browser editor's type checking, with the
    secret names of the action `action` (posted by the editor of a saved action; none for a new one)."""
    try:
        schema = parse_schema_text(request.POST.get("config_schema", ""))
    except ValidationError:
        schema = {}  # an unparsable schema gets the untyped Config
    names: list[str] = []
    if action_slug := request.POST.get("action", ""):
        action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
        names = [secret.name for secret in list_secrets(action)]
    dts = sdk_declarations(schema if isinstance(schema, dict) else {}, names)
    return HttpResponse(dts, content_type="text/plain")


@tenant_view
@require_POST
def action_test(request: HtmxHttpRequest, access: TenantAccess, action_slug: str | None = None) -> HttpResponse:
    """Run the unsaved draft (source and schema from the editor) or a saved version.

    The Run button belongs to the editor's form, so without JavaScript the whole editor comes
    back with everything typed and the result; with htmx only the harness region is swapped."""
    action = None
    if action_slug is None:
        access.require("create_action")
    else:
        action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
        require_object_perm(access, "test_action", action)
    target = request.POST.get("harness_target", "draft")
    version = action.versions.filter(version=target).first() if action is not None and target != "draft" else None
    form = ActionEditorForm(request.POST, editing_existing=action is not None)
    schema = version.config_schema if version else _schema_of(form, None)
    replayed = replayable_execution(access, action, request.POST.get("replay", "")) if action else None
    config_form = _harness_config_form(schema, data=request.POST, secrets=_replay_secrets(replayed))
    run: HarnessRun | None
    if schema is None:
        run = HarnessRun(input_errors={"config_schema": ["The config schema is not valid JSON; fix it to run."]})
    elif schema_problems := config_schema_problems(schema):
        run = HarnessRun(input_errors={"config_schema": schema_problems})
    elif config_form is not None and config_form.row_change_requested:
        run = None  # a row was added or removed: show the form again, run nothing
    elif config_form is not None and not config_form.is_valid():
        run = HarnessRun(input_errors={"config": ["Fix the test config's errors shown next to its fields."]})
    else:
        run = run_in_harness(
            tenant=access.tenant,
            action_slug=action.slug if action else "draft",
            raw_input=request.POST.get("harness_input", ""),
            config=config_form.cleaned_config if config_form is not None else {},
            config_schema=schema,
            version=version,
            draft_source=form.data.get("source", "") if version is None else None,
            action_id=action.pk if action is not None else None,
        )
    latest = action.latest_version() if action else None
    context = editor_context(access, form, action=action, latest=latest)
    context.update(
        harness_run=run,
        harness_config_form=config_form,
        harness_input=request.POST.get("harness_input", ""),
        harness_trigger=request.POST.get("harness_trigger", context["harness_trigger"]),
        harness_target=target,
    )
    if replayed is not None:
        context.update(replayed=replayed, replay=replay_comparison(replayed, run, target))
    partial = "harness" if request.htmx else None
    return render_tenant_page(request, access, "actions_app/action_editor.html", context, partial=partial)


@tenant_view
def sample_input_for(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    """The sample input of a trigger slot, as JSON text for the harness."""
    trigger = request.GET.get("trigger", "")
    if trigger not in ALL_TRIGGERS:
        trigger = ALL_TRIGGERS[0]
    return HttpResponse(json.dumps(sample_input(trigger), indent=2), content_type="application/json")
