"""The flow editor: every slot of a flow in one form, saved as a new revision, and "Try it".

Every button of the editor (add, remove, move, upgrade, show another version, a config list's
add/remove row) posts the whole unsaved state and gets it back re-rendered, so the page works
without JavaScript and nothing typed is lost. With htmx only the editor region is swapped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from actions_app.schema_forms.fields import number_from_text
from actions_app.triggers import FLOW_SLOTS
from core.api_types import RISK_SCORE_MESSAGE, risk_score_problem
from core.http import HtmxHttpRequest
from core.json_text import parse_json_text
from flows_app.bindings import stored_secrets
from flows_app.editor_form import EditorOp, apply_op, state_from_post, state_from_revision
from flows_app.editor_merge import Conflict, merge_stale
from flows_app.editor_state import Catalogue, EditorState
from flows_app.engine import RunRefused, RunRequest, RunResult, run_flow
from flows_app.models import Binding, Flow, FlowRevision
from flows_app.services import InvalidBindings, StaleRevision, save_flow_slots
from flows_app.sign_in import SignInRun, run_sign_in
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view
from tenants.pages import render_tenant_page
from tenants.permissions import has_object_perm

TEMPLATE = "flows_app/flow_editor.html"
_TRANSACTION_ID = re.compile(r"^[A-Za-z0-9._:|-]{1,64}$")
# What the two Run buttons post as `try-scope`: every slot in order, or the chosen trigger only.
SIGN_IN, ONE_TRIGGER = "sign_in", "trigger"


class TryItForm(forms.Form):
    """A made-up attempt, run through the flow's saved revision from the editor's "Try it" panel."""

    prefix = "try"

    trigger = forms.ChoiceField(
        label="Trigger", help_text="The slot “Run this trigger only” runs; the whole sign-in starts at the first."
    )
    email = forms.EmailField(label="User email", initial="jane@example.com", max_length=254)
    groups = forms.CharField(
        label="Groups", required=False, max_length=500, help_text="Comma separated, e.g. admins, staff."
    )
    ip = forms.GenericIPAddressField(label="IP address", initial="203.0.113.7", help_text="IPv4 or IPv6.")
    # Text read by the config forms' number rule: a FloatField also took "9_0", "９０" and "٩٠" as 90.
    risk_score = forms.CharField(
        label="Risk score",
        initial=20,
        help_text="0–100, as the risk engine would score the attempt.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    app_metadata = forms.CharField(
        label="App metadata",
        required=False,
        max_length=4000,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text='A JSON object the user carries, e.g. {"plan": "pro"}, as custom actions and decorate-token read it.',
    )
    # Posted by the Run button pressed, so it has no input of its own.
    scope = forms.ChoiceField(
        label="Run",
        required=False,
        choices=[(SIGN_IN, "The whole sign-in"), (ONE_TRIGGER, "This trigger only")],
        error_messages={"invalid_choice": "Press “Run the whole sign-in” or “Run this trigger only”."},
    )
    transaction_id = forms.CharField(
        label="Transaction id",
        required=False,
        max_length=64,
        help_text="Optional. Reuse one to run a later trigger of the same transaction on the revision it began with; "
        "an id not seen before starts a new transaction, as it would for the API.",
    )

    def __init__(self, flow: Flow, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        slots = FLOW_SLOTS[flow.kind]
        trigger_field = self.fields["trigger"]
        assert isinstance(trigger_field, forms.ChoiceField)
        trigger_field.choices = [(t, t) for t in slots]
        # post-auth is where the risk templates act; other kinds start at their first slot.
        trigger_field.initial = next((t for t in slots if t.endswith("post-auth")), slots[0])

    def clean_groups(self) -> list[str]:
        return [group.strip() for group in self.cleaned_data["groups"].split(",") if group.strip()]

    def clean_risk_score(self) -> float:
        score = number_from_text(self.cleaned_data["risk_score"])
        if score is None:
            raise forms.ValidationError("Enter a number such as 20 or 72.5, written with the digits 0–9.")
        if risk_score_problem(score):
            raise forms.ValidationError(f"The risk score {RISK_SCORE_MESSAGE}.")
        return float(score)

    def clean_app_metadata(self) -> dict[str, Any]:
        text = self.cleaned_data["app_metadata"]
        value = parse_json_text(text) if text else {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"plan": "pro"}.')
        return value

    def clean_transaction_id(self) -> str:
        value: str = self.cleaned_data["transaction_id"].strip()
        if value and not _TRANSACTION_ID.match(value):
            raise forms.ValidationError("Use letters, digits and . _ : | - only.")
        return value

    def clean_scope(self) -> str:
        # A request without it (a page loaded before the whole sign-in existed) runs one trigger.
        return self.cleaned_data["scope"] or ONE_TRIGGER

    def run_request(self, request: HttpRequest) -> RunRequest:
        data = self.cleaned_data
        user = {"id": f"try|{data['email']}", "email": data["email"], "email_verified": True}
        return RunRequest(
            trigger=data["trigger"],
            user={**user, "groups": data["groups"], "app_metadata": data["app_metadata"]},
            request={
                "ip": data["ip"],
                "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
                "hostname": request.get_host(),
            },
            risk_score=data["risk_score"],
            transaction_id=data["transaction_id"] or None,
        )


@dataclass(frozen=True)
class BindingChange:
    kind: str  # attached, detached or updated
    action: str
    version: str
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StaleReport:
    """Why a save was refused: who saved since the revision the operator edited, and what changed."""

    edited: int
    current: FlowRevision
    saved_since: list[FlowRevision]
    slots: list[tuple[str, list[BindingChange]]]
    # What both sides changed, setting by setting; None when the edited revision is unknown, so
    # that no merge can be worked out (only overwriting or reloading).
    conflicts: list[Conflict] | None = None

    @property
    def has_changes(self) -> bool:
        return any(changes for _, changes in self.slots)


def stale_report(flow: Flow, stale: StaleRevision, conflicts: list[Conflict] | None = None) -> StaleReport:
    """Compare the edited revision with the current one, binding by binding (by their stable key)."""
    revisions = FlowRevision.objects.filter(flow=flow).select_related("created_by")
    edited = revisions.filter(number=stale.expected).first()
    since = list(revisions.filter(number__gt=stale.expected, number__lte=stale.current.number).order_by("number"))
    current = since[-1] if since else stale.current

    def bindings_of(revision: FlowRevision | None) -> list[Binding]:
        if revision is None:
            return []
        return list(revision.bindings.select_related("action", "pinned_version"))

    old, new = bindings_of(edited), bindings_of(current)
    slots = []
    for trigger in FLOW_SLOTS[flow.kind]:
        before = {b.key: b for b in old if b.trigger == trigger}
        after = {b.key: b for b in new if b.trigger == trigger}
        changes = [_change("attached", b) for key, b in after.items() if key not in before]
        changes += [_change("detached", b) for key, b in before.items() if key not in after]
        for key in before.keys() & after.keys():
            details = _differences(before[key], after[key])
            if details:
                changes.append(_change("updated", after[key], details))
        slots.append((trigger, changes))
    return StaleReport(stale.expected, current, since, slots, conflicts if edited is not None else None)


def _change(kind: str, binding: Binding, details: list[str] | None = None) -> BindingChange:
    return BindingChange(kind, binding.action.name, binding.pinned_version.version, details or [])


def _differences(old: Binding, new: Binding) -> list[str]:
    details = []
    if old.pinned_version_id != new.pinned_version_id:
        details.append(f"version {old.pinned_version.version} → {new.pinned_version.version}")
    if old.position != new.position:
        details.append(f"moved from #{old.position + 1} to #{new.position + 1}")
    if old.enabled != new.enabled:
        details.append("enabled" if new.enabled else "disabled")
    if old.on_error != new.on_error:
        details.append(f"on error {old.on_error} → {new.on_error}")
    if old.timeout_ms != new.timeout_ms:
        details.append(f"timeout {old.timeout_ms} → {new.timeout_ms} ms")
    for name in sorted(old.config.keys() | new.config.keys()):
        if old.config.get(name) != new.config.get(name):
            details.append(f"{name}: {_shown(old.config.get(name))} → {_shown(new.config.get(name))}")
    if stored_secrets(old) != stored_secrets(new):
        details.append("a secret was replaced")
    return details


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def _flow_or_404(access: TenantAccess, flow_slug: str) -> Flow:
    flows = Flow.objects.select_related("tenant", "current_revision__created_by")
    return get_visible_or_404(access, "view_flow", flows, slug=flow_slug)


def _saved_state(flow: Flow, catalogue: Catalogue) -> EditorState:
    assert flow.current_revision is not None
    return state_from_revision(flow, flow.current_revision, catalogue)


def _page(
    request: HtmxHttpRequest,
    access: TenantAccess,
    flow: Flow,
    state: EditorState | None,
    *,
    status: int = 200,
    partial: str = "editor",
    stale: StaleReport | None = None,
    try_form: TryItForm | None = None,
    try_run: RunResult | SignInRun | None = None,
) -> HttpResponse:
    can_edit = has_object_perm(access.user, "change_flow", flow)
    if state is not None and not can_edit:
        # A read-only editor's buttons are all disabled, Expand too: show every card whole.
        for binding in state.bindings:
            binding.expanded = True
    context = {
        "flow": flow,
        "state": state,
        "summary": state.summary() if state is not None else [],
        "can_edit": can_edit,
        "can_duplicate": access.can("create_flow"),
        "can_delete": not flow.is_system and has_object_perm(access.user, "delete_flow", flow),
        "stale": stale,
        "try_form": try_form or TryItForm(flow),
        "try_run": try_run if isinstance(try_run, RunResult) else None,
        "try_sign_in": try_run if isinstance(try_run, SignInRun) else None,
    }
    if request.htmx:
        # htmx swaps only 2xx answers (and the browser logs every 4xx as a console error); the
        # swapped region says what went wrong. Without JavaScript the status says it too.
        response = render_tenant_page(request, access, TEMPLATE, context, partial=partial)
        if partial == "editor" and status in (409, 422):
            # A refused save: Save is at the bottom, what went wrong at the top (flow_editor.js).
            trigger_client_event(response, "flowSaveRefused", after="settle")
        return response
    return render_tenant_page(request, access, TEMPLATE, context, status=status)


@tenant_view
@require_http_methods(["GET", "POST"])
def flow_editor(request: HtmxHttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    """The flow editor page; every editor button posts here with the whole unsaved state."""
    flow = _flow_or_404(access, flow_slug)
    if request.method == "POST":
        require_object_perm(access, "change_flow", flow)
    catalogue = Catalogue.load(access, flow)
    if request.method == "GET" or "expected_revision" not in request.POST:
        return _page(request, access, flow, _saved_state(flow, catalogue))
    state = state_from_post(request.POST, flow, catalogue)
    op = EditorOp.parse(request.POST.get("op", ""))
    if op.name in {"merge", "overwrite"} and not state.row_change_requested:
        return _merge(request, access, flow, state, catalogue, mine_wins=op.name == "overwrite")
    if op.name != "save" or state.row_change_requested:
        apply_op(state, op, request.POST, catalogue)
        return _page(request, access, flow, state)
    if not state.check_before_save():
        return _page(request, access, flow, state, status=422)
    try:
        revision = save_flow_slots(
            flow, state.specs(), expected_revision=state.expected_revision, comment=state.comment, acting=access.acting
        )
    except StaleRevision as stale:
        # The state keeps the revision it was edited from: saving again is refused again until the
        # operator merges, overwrites or reloads (nothing is ever overwritten silently).
        flow = _flow_or_404(access, flow_slug)
        return _stale_page(request, access, flow, state, catalogue, stale.expected)
    except InvalidBindings as invalid:
        state.attach_service_errors(invalid.errors)
        return _page(request, access, flow, state, status=422)
    messages.success(request, f"Saved revision {revision.number}.")
    url = reverse("flows:detail", kwargs={"tenant_slug": access.tenant.slug, "flow_slug": flow.slug})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _try_run(
    request: HtmxHttpRequest, access: TenantAccess, flow: Flow, try_form: TryItForm
) -> RunResult | SignInRun | None:
    """Run what the valid `try_form` asks for: the whole sign-in, or its one trigger."""
    acting = access.acting
    if try_form.cleaned_data["scope"] == SIGN_IN:
        return run_sign_in(flow, try_form.run_request(request), acting=acting)
    try:
        return run_flow(flow, try_form.run_request(request), acting=acting)
    except RunRefused as refused:
        try_form.add_error("trigger", str(refused))
        return None


def _stale_page(
    request: HtmxHttpRequest, access: TenantAccess, flow: Flow, state: EditorState, catalogue: Catalogue, edited: int
) -> HttpResponse:
    """409: what was saved since revision `edited`, and what the operator can do about it."""
    assert flow.current_revision is not None
    base = FlowRevision.objects.filter(flow=flow, number=edited).first()
    conflicts = None
    if base is not None:
        conflicts = merge_stale(flow, catalogue, state, base, flow.current_revision).conflicts
    report = stale_report(flow, StaleRevision(flow.current_revision, edited), conflicts)
    apply_op(state, EditorOp(""), request.POST, catalogue)
    return _page(request, access, flow, state, status=409, stale=report)


def _merge(
    request: HtmxHttpRequest,
    access: TenantAccess,
    flow: Flow,
    state: EditorState,
    catalogue: Catalogue,
    *,
    mine_wins: bool,
) -> HttpResponse:
    """Show the unsaved flow merged with the revision saved since it was opened (nothing is saved).
    Conflicting bindings are merged only when the operator chose to overwrite them with theirs."""
    current = flow.current_revision
    assert current is not None
    base = FlowRevision.objects.filter(flow=flow, number=state.expected_revision).first()
    if base is None or base.number == current.number:
        state.notices.append(f"Nothing to merge: you are editing r{current.number}, the running revision.")
        apply_op(state, EditorOp(""), request.POST, catalogue)
        return _page(request, access, flow, state)
    merge = merge_stale(flow, catalogue, state, base, current, mine_wins=mine_wins)
    if merge.conflicts and not mine_wins:
        return _stale_page(request, access, flow, state, catalogue, base.number)
    apply_op(merge.state, EditorOp(""), request.POST, catalogue)
    merge.state.notices.extend(merge.notices())
    response = _page(request, access, flow, merge.state)
    if request.htmx:
        # The merge was chosen in the box at the top, but the operator may be far below it.
        trigger_client_event(response, "flowMerged", after="settle")
    return response


@tenant_view
@require_POST
def flow_try(request: HtmxHttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    """Run the SAVED current revision with a made-up attempt: every slot in order as one sign-in,
    or one trigger. It really runs: the executions are recorded and audited like a sign-in's,
    with the operator as the actor."""
    flow = _flow_or_404(access, flow_slug)
    require_object_perm(access, "change_flow", flow)
    try_form = TryItForm(flow, request.POST)
    run = _try_run(request, access, flow, try_form) if try_form.is_valid() else None
    state = None
    if not request.htmx:
        # Without JavaScript the whole page comes back, with the editor's unsaved state as posted.
        catalogue = Catalogue.load(access, flow)
        if "expected_revision" in request.POST:
            state = state_from_post(request.POST, flow, catalogue)
            apply_op(state, EditorOp(""), request.POST, catalogue)
        else:
            state = _saved_state(flow, catalogue)
    status = 200 if run is not None else 422
    return _page(request, access, flow, state, status=status, partial="try_panel", try_form=try_form, try_run=run)
