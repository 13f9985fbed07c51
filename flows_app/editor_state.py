"""The flow editor's unsaved state: its slots and bindings as the editor shows them, what the
page checks before a save (and where it shows what is wrong), and a binding's config form carried
from one version of its action to another.

flows_app.editor_form reads the state from a saved revision or from the posted form and applies
the editor's buttons to it; flows_app.editor_merge merges it with a revision saved meanwhile.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actions_app.models import Action, ActionVersion, VersionStatus, newer_published_for
from actions_app.schema_forms import ConfigForm, UnsupportedSchema, build_config_form
from actions_app.schema_forms.field_tree import walk
from actions_app.schema_forms.fields import CollectContext, LineListField, TextField
from actions_app.schema_forms.posted import defaults_for
from actions_app.schema_forms.validation import label_for
from actions_app.triggers import ALLOWED_RESULTS
from core.api_types import text_problem
from core.http import parse_count
from flows_app.binding_summary import SettingSummary, config_summary
from flows_app.models import Flow, FlowRevision, OnError
from flows_app.services import MAX_BINDINGS_PER_SLOT, MAX_SLOT_TIMEOUT_MS, BindingSpec
from tenants.access import TenantAccess, visible

BINDING_FIELDS = ("action", "version", "enabled", "on_error", "timeout_ms")
FIELD_LABELS = {
    "action": "Action",
    "version": "Version",
    "enabled": "Enabled",
    "on_error": "On error",
    "timeout_ms": "Timeout (ms)",
    "config": "Config",
}
TIMEOUT_MESSAGE = "Enter a whole number of milliseconds from 50 to 5000."


@dataclass(frozen=True)
class Offer:
    action: Action
    newest: ActionVersion


@dataclass
class Catalogue:
    """The actions the operator may attach, and the published versions of every action in view."""

    actions: dict[str, Action]
    offerable: set[str]
    published: dict[int, list[ActionVersion]]

    @classmethod
    def load(cls, access: TenantAccess, flow: Flow) -> Catalogue:
        visible_actions = list(visible(access, "view_action", Action.objects.all()).order_by("name"))
        # Actions already attached stay editable even when the operator cannot open them.
        bound = Action.objects.filter(tenant=flow.tenant, bindings__revision=flow.current_revision).distinct()
        actions = {a.slug: a for a in visible_actions}
        for action in bound:
            actions.setdefault(action.slug, action)
        published: dict[int, list[ActionVersion]] = {a.pk: [] for a in actions.values()}
        versions = (
            ActionVersion.objects.filter(action__in=list(actions.values()), status=VersionStatus.PUBLISHED)
            .defer("source", "compiled_js", "source_map")
            .order_by("-major", "-minor", "-patch")
        )
        for version in versions:
            published[version.action_id].append(version)
        return cls(actions, {a.slug for a in visible_actions}, published)

    def versions_for(self, action: Action, trigger: str) -> list[ActionVersion]:
        """Published versions of `action` that may run in `trigger`, newest first."""
        return [v for v in self.published.get(action.pk, []) if trigger in v.compatible_triggers]

    def offered(self, trigger: str) -> list[Offer]:
        """What "Add an action" lists for a slot: visible actions with a published version for it."""
        offers = []
        for slug, action in sorted(self.actions.items(), key=lambda item: item[1].name.lower()):
            versions = self.versions_for(action, trigger) if slug in self.offerable else []
            if versions:
                offers.append(Offer(action, versions[0]))
        return offers

    def version(self, action: Action, label: str) -> ActionVersion | None:
        return next((v for v in self.published.get(action.pk, []) if v.version == label), None)


@dataclass(eq=False)
class EditorBinding:
    """One binding as the editor shows it; `version` is the version whose config form is shown."""

    uid: str
    trigger: str
    action: Action
    version: ActionVersion
    choices: list[ActionVersion]
    config_form: ConfigForm | None
    stored_secrets: dict[str, Any]
    enabled: bool = True
    on_error: str = OnError.BLOCK
    timeout_raw: str = "1000"
    is_new: bool = False
    selected: ActionVersion | None = None  # the version select's value, when it differs from `version`
    errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    expanded: bool = False
    # Without JavaScript an Expand/Collapse reloads the page: its button gets the focus back.
    focus_toggle: bool = False

    @property
    def prefix(self) -> str:
        return f"b-{self.uid}"

    @property
    def is_open(self) -> bool:
        """Whether the card shows its whole form: the operator opened it, or it has something to
        say (an error, a note about a version change) that a summary line would hide."""
        has_config_errors = self.config_form is not None and self.config_form.has_errors
        return self.expanded or bool(self.errors or self.notes) or has_config_errors

    @property
    def config_summary(self) -> list[SettingSummary]:
        return config_summary(self.config_form)

    @property
    def config_prefix(self) -> str:
        return f"{self.prefix}-config"

    @property
    def newer(self) -> ActionVersion | None:
        """The latest published version this slot can run, when it is newer than the chosen one."""
        return newer_published_for(self.choices, self.version, self.trigger)

    @property
    def newer_version(self) -> str | None:
        newer = self.newer
        return newer.version if newer else None

    @property
    def on_error_choices(self) -> list[tuple[str, str]]:
        return [(value, str(label)) for value, label in OnError.choices]

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def timeout_ms(self) -> int | None:
        timeout = parse_count(self.timeout_raw)
        return timeout if timeout is not None and 50 <= timeout <= 5000 else None


@dataclass(eq=False)
class EditorSlot:
    trigger: str
    bindings: list[EditorBinding]
    offered: list[Offer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def allowed_results(self) -> list[str]:
        return ALLOWED_RESULTS[self.trigger]

    @property
    def order_value(self) -> str:
        return ",".join(b.uid for b in self.bindings)

    @property
    def timeout_budget_used_ms(self) -> int:
        """What the enabled bindings' timeouts add up to (a timeout not yet valid counts as 0)."""
        return sum(b.timeout_ms() or 0 for b in self.bindings if b.enabled)

    max_bindings = MAX_BINDINGS_PER_SLOT
    max_timeout_ms = MAX_SLOT_TIMEOUT_MS


@dataclass(frozen=True)
class SummaryLine:
    where: str
    message: str
    anchor: str


REVISION_COMMENT_MAX = FlowRevision._meta.get_field("comment").max_length or 200


@dataclass(eq=False)
class EditorState:
    flow: Flow
    expected_revision: int
    slots: list[EditorSlot]
    notices: list[str] = field(default_factory=list)
    general_errors: list[str] = field(default_factory=list)
    # The note saved with the next revision ("why"), shown in the revision history.
    comment: str = ""
    comment_errors: list[str] = field(default_factory=list)

    @property
    def bindings(self) -> list[EditorBinding]:
        return [b for slot in self.slots for b in slot.bindings]

    def find(self, uid: str) -> tuple[EditorSlot, int] | None:
        for slot in self.slots:
            for index, binding in enumerate(slot.bindings):
                if binding.uid == uid:
                    return slot, index
        return None

    @property
    def row_change_requested(self) -> bool:
        return any(b.config_form is not None and b.config_form.row_change_requested for b in self.bindings)

    def summary(self) -> list[SummaryLine]:
        """Every error on the page, each linking to the field that shows it."""
        lines = [SummaryLine("Flow", message, "flow-editor") for message in self.general_errors]
        lines += [SummaryLine("Note for this revision", m, "id_revision_comment") for m in self.comment_errors]
        for slot in self.slots:
            lines += [SummaryLine(slot.trigger, message, f"slot-{slot.trigger}") for message in slot.errors]
            for position, binding in enumerate(slot.bindings, start=1):
                where = f"{slot.trigger} › #{position} {binding.action.name}"
                for name, messages in binding.errors.items():
                    anchor = f"{binding.prefix}-{name}" if name in BINDING_FIELDS else f"binding-{binding.uid}"
                    label = FIELD_LABELS.get(name, "")
                    lines += [SummaryLine(f"{where} › {label}" if label else where, m, anchor) for m in messages]
                form = binding.config_form
                if form is not None:
                    lines += [
                        SummaryLine(f"{where} › {item.label}", item.message, item.anchor_id) for item in form.summary
                    ]
                    lines += [SummaryLine(where, m, f"binding-{binding.uid}") for m in form.form_errors]
        return lines

    def specs(self) -> dict[str, list[BindingSpec]]:
        """The state as `save_flow_slots` takes it; only call after `check_before_save()` is True."""
        slots: dict[str, list[BindingSpec]] = {}
        for slot in self.slots:
            slots[slot.trigger] = []
            for binding in slot.bindings:
                assert binding.config_form is not None
                slots[slot.trigger].append(
                    BindingSpec(
                        action=binding.action.slug,
                        version=binding.version.version,
                        config=binding.config_form.cleaned_config,
                        enabled=binding.enabled,
                        on_error=binding.on_error,
                        timeout_ms=binding.timeout_ms() or 0,
                        key=uuid.UUID(binding.uid),
                    )
                )
        return slots

    def check_before_save(self) -> bool:
        """Validate what the page can check itself (config forms, numbers); errors go next to fields."""
        ok = not self.general_errors
        problem = text_problem(self.comment)
        if problem:
            self.comment_errors.append(f"The note {problem}.")
            ok = False
        elif len(self.comment) > REVISION_COMMENT_MAX:
            self.comment_errors.append(
                f"Keep the note within {REVISION_COMMENT_MAX} characters (it has {len(self.comment)})."
            )
            ok = False
        for binding in self.bindings:
            if binding.selected is not None:
                chosen = binding.selected.version
                switch_version(binding, binding.selected)
                binding.add_error("version", f"You chose {chosen}; check its config below and save again.")
                ok = False
                continue
            if binding.timeout_ms() is None:
                binding.add_error("timeout_ms", TIMEOUT_MESSAGE)
                ok = False
            if binding.on_error not in OnError.values:
                binding.add_error("on_error", "Choose block or continue.")
                ok = False
            if binding.config_form is None or not binding.config_form.is_valid():
                ok = False
        return ok

    def attach_service_errors(self, errors: Mapping[str, list[str]]) -> None:
        """Put InvalidBindings' "<trigger>.<index>.<field>" errors next to the fields they are about."""
        slots = {slot.trigger: slot for slot in self.slots}
        for key, messages in errors.items():
            trigger = next((t for t in slots if key == t or key.startswith(f"{t}.")), None)
            if trigger is None:
                self.general_errors.extend(messages)
                continue
            index_text, _, name = key[len(trigger) + 1 :].partition(".")
            slot = slots[trigger]
            index = parse_count(index_text)
            if index is None or index >= len(slot.bindings):
                slot.errors.extend(messages)
                continue
            binding = slot.bindings[index]
            if name == "config" or name.startswith("config."):
                _attach_config_errors(binding, name.removeprefix("config").lstrip("."), messages)
            else:
                for message in messages:
                    binding.add_error(name if name in BINDING_FIELDS else "action", message)


def _attach_config_errors(binding: EditorBinding, path: str, messages: list[str]) -> None:
    form = binding.config_form
    nodes = {node.path: node for node in walk(form.root)} if form is not None else {}
    shown_at = path
    while shown_at and shown_at not in nodes:
        shown_at = shown_at.rpartition(".")[0]
    if not shown_at:
        for message in messages:
            binding.add_error("config", message)
        return
    node = nodes[shown_at]
    node.errors.extend(m for m in messages if m not in node.errors)


# ---- a binding's config form --------------------------------------------------------------------


def _config_form(
    action: Action,
    version: ActionVersion,
    prefix: str,
    secrets: dict[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    initial: dict[str, Any] | None = None,
) -> ConfigForm | None:
    try:
        return build_config_form(
            version.config_schema,
            data=data,
            initial=initial,
            prefix=prefix,
            stored_secrets=secrets,
            template=action.template_slug,
        )
    except UnsupportedSchema:
        return None


def _unsupported(binding: EditorBinding) -> None:
    if binding.config_form is None:
        binding.add_error("config", f"{binding.version.version}'s config schema cannot be shown as a form.")


def switch_version(binding: EditorBinding, target: ActionVersion) -> None:
    """Show `target`'s config form, carrying over what the old one held and saying what did not fit."""
    old_form = binding.config_form
    old = binding.version
    binding.version, binding.selected = target, None
    if old_form is None:
        binding.config_form = _config_form(binding.action, target, binding.config_prefix, binding.stored_secrets)
        _unsupported(binding)
        return
    binding.config_form = _carried_form(old_form, binding.action, target, binding.config_prefix, binding.stored_secrets)
    _unsupported(binding)
    verb = "Upgraded" if target.semver_key() > old.semver_key() else "Switched"
    binding.notes.append(
        f"{verb} from {old.version} to {target.version} (not saved yet). The config below was carried over "
        "and is checked against the new version when you save."
    )
    old_props = old_form.schema.get("properties", {})
    new_props = target.config_schema.get("properties", {})
    added = [label_for(name, schema) for name, schema in new_props.items() if name not in old_props]
    if added:
        binding.notes.append(f"New in {target.version}: " + ", ".join(f"“{label}”" for label in added) + ".")
    for name, value in collect_config(old_form).items():
        if name not in new_props:
            label = label_for(name, old_props.get(name))
            shown = "a stored secret" if old_props.get(name, {}).get("writeOnly") else _short(value)
            binding.notes.append(
                f"“{label}” ({shown}) is not a setting of {target.version}; it will not be kept when you save."
            )


def collect_config(form: ConfigForm) -> dict[str, Any]:
    """What a form holds as a config (bound or not), leaving out text that cannot be read."""
    config = form.root.collect(CollectContext(stored_secrets=form.stored_secrets))
    return config if isinstance(config, dict) else {}


def _carried_form(
    old_form: ConfigForm, action: Action, target: ActionVersion, prefix: str, secrets: dict[str, Any]
) -> ConfigForm | None:
    """`old_form`'s values as an unvalidated form of `target`'s schema: nothing typed is lost."""
    context = CollectContext(stored_secrets=old_form.stored_secrets)
    collected = old_form.root.collect(context)
    config = collected if isinstance(collected, dict) else {}
    old_props = old_form.schema.get("properties", {})
    defaults = defaults_for(target.config_schema) or {}
    # Settings the old version did not have start at their defaults, as they would on a new binding.
    initial = {**{k: v for k, v in defaults.items() if k not in old_props}, **config}
    for path in list(initial):
        if old_props.get(path, {}).get("writeOnly"):
            initial.pop(path)  # never put back into the page; a stored one is kept by the save
    new_form = _config_form(action, target, prefix, secrets, initial=initial)
    if new_form is None:
        return None
    # Text that could not be read as its type (e.g. "ten" for a number) is shown again as typed.
    old_nodes = {node.path: node for node in walk(old_form.root)}
    for node in walk(new_form.root):
        before = old_nodes.get(node.path)
        if node.path not in context.errors or type(before) is not type(node):
            continue
        if isinstance(node, TextField | LineListField) and isinstance(before, TextField | LineListField):
            node.raw = before.raw
    return new_form


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"
