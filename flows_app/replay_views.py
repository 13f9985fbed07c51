"""Replay of a platform template's execution: its recorded input run again with the recorded
version and config (or another version, another config), beside the recorded result.

A custom action replays in its editor's test harness; a template has no editor, so it replays
here. Nothing a replay does reaches live traffic: no execution or audit event is recorded, its
rate-limit counters start from zero in a scope of their own, and no webhook is sent.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from actions_app.harness import HarnessRun, parse_input_json, replay_comparison
from actions_app.models import Action, ActionKind, ActionVersion
from actions_app.runtime.results import ExecutionResult
from actions_app.sample_inputs import InvalidSampleInput, harness_input
from actions_app.schema_forms import build_config_form
from flows_app.bindings import stored_secrets
from flows_app.engine import execute_template
from flows_app.execution_links import binding_of, execution_links, recorded_config
from flows_app.models import ActionExecution
from flows_app.run_history import visible_execution_or_404
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view
from tenants.pages import render_tenant_page

CONFIG_PREFIX = "replay-config"
MAX_INPUT_CHARS = 64 * 1024


class ReplayForm(forms.Form):
    version = forms.ChoiceField(label="Version", help_text="The recorded version is chosen; pick another to compare.")
    input = forms.CharField(
        label="Input (JSON)",
        max_length=MAX_INPUT_CHARS,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code-input"}),
        help_text="The recorded input, secrets masked. Its context.config is replaced by the config beside it.",
    )

    def __init__(self, *args: Any, versions: list[ActionVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        version_field = self.fields["version"]
        assert isinstance(version_field, forms.ChoiceField)
        version_field.choices = [(v.version, f"{v.version} ({v.status})") for v in versions]


def _recorded_input(execution: ActionExecution) -> str:
    """The input the operator starts from: as recorded, without the config (the form holds it)."""
    recorded = dict(execution.masked_input) if isinstance(execution.masked_input, dict) else {}
    context = recorded.get("context")
    if isinstance(context, dict):
        recorded["context"] = {key: value for key, value in context.items() if key != "config"}
    return json.dumps(recorded, indent=2, ensure_ascii=False)


def _chosen(versions: list[ActionVersion], label: str) -> ActionVersion | None:
    return next((v for v in versions if v.version == label), None)


def _run_replay(
    action: Action, version: ActionVersion, raw_input: str, config: dict[str, Any], tenant_slug: str
) -> tuple[HarnessRun, list[str]]:
    """Run `version` of the template on the operator's input and config: the run, and the hosts
    of the webhooks it would have sent (a replay sends none)."""
    run = HarnessRun()
    try:
        edited = parse_input_json(raw_input)
        run.action_input = harness_input(
            edited, tenant_slug=tenant_slug, action_slug=action.slug, version_label=version.version, config=config
        )
    except InvalidSampleInput as error:
        run.input_errors["input"] = [str(error)]
        return run, []
    trigger = run.action_input["trigger"]
    if trigger not in version.compatible_triggers:
        run.input_errors["version"] = [f"{version.version} cannot run in {trigger}; choose a version that can."]
        return run, []
    executed = execute_template(action.slug, version.version, run.action_input, f"replay:{uuid.uuid4().hex}")
    run.execution = ExecutionResult(executed.result, executed.logs, executed.duration_ms, executed.error)
    return run, [urlsplit(message.url).hostname or "?" for message in executed.outbound]


@tenant_view
@require_http_methods(["GET", "POST"])
def template_replay(request: HttpRequest, access: TenantAccess, action_slug: str, execution_id: str) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    execution = visible_execution_or_404(access, action, execution_id)
    if request.method == "POST":
        require_object_perm(access, "test_action", action)
    if action.kind == ActionKind.CUSTOM:  # a custom action replays in its editor's test harness
        return redirect(execution_links(access.tenant.slug, execution).replay or "/")
    versions = list(action.versions.order_by("-major", "-minor", "-patch"))
    binding = binding_of(execution)
    data = request.POST if request.method == "POST" else None
    asked = (data or request.GET).get("version", "")
    label = asked or execution.action_version
    form = ReplayForm(data, versions=versions, initial={"version": label, "input": _recorded_input(execution)})
    # Unknown version: the form says so; the config form still shows the recorded version's.
    version = _chosen(versions, label) or _chosen(versions, execution.action_version) or versions[0]
    version_error = ""
    if data is None and version.version != label:  # a POST's version is the form's to check
        missing = f"No version {label[:40]!r} of {action.slug}" if asked else f"Version {label} is no longer shipped"
        version_error = f"{missing}; showing {version.version}."
    config_form = build_config_form(
        version.config_schema,
        data=data,
        # The recorded config: its secrets are masks, which a form never shows (the stored
        # secrets of the binding that ran stand in for them when left blank).
        initial=recorded_config(execution),
        prefix=CONFIG_PREFIX,
        stored_secrets=stored_secrets(binding) if binding else {},
        template=action.template_slug,
    )
    run: HarnessRun | None = None
    unsent: list[str] = []
    if data is not None and form.is_valid() and not config_form.row_change_requested and config_form.is_valid():
        config = config_form.cleaned_config
        run, unsent = _run_replay(action, version, form.cleaned_data["input"], config, access.tenant.slug)
        for field_name, messages in run.input_errors.items():
            form.add_error(field_name, messages)
    context = {
        "action": action,
        "execution": execution,
        "form": form,
        "config_form": config_form,
        "version": version,
        "version_error": version_error,
        "can_run": access.has_perm("test_action", action),
        "replay": replay_comparison(execution, run, version.version),
        "run": run,
        "unsent": unsent,
        "recorded_secrets": binding is not None and bool(binding.encrypted_secrets),
    }
    invalid = (data is not None and (bool(form.errors) or config_form.has_errors)) or (
        bool(asked) and bool(version_error)
    )
    return render_tenant_page(
        request, access, "actions_app/template_replay.html", context, status=400 if invalid else 200
    )
