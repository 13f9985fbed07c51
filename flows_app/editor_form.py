"""The flow editor's one <form>: a saved revision shown in it, the posted form read back into an
`EditorState` (flows_app.editor_state), and the editor's buttons applied to that state.

Posted shape (one <form> for the whole flow, so every button round-trips everything typed):

- `expected_revision`: the revision the operator is editing (optimistic concurrency).
- `order-<trigger>`: the binding ids of that slot, comma separated, in position order. Only ids
  listed here are part of the flow; reordering (drag and drop or Move up/down) rewrites this one
  field and never renames an input.
- per binding id `<uid>` (the binding's stable `key` as hex; a fresh one for a new binding):
  `b-<uid>-action`, `b-<uid>-version` (the version select), `b-<uid>-shown` (the version whose
  config form is on the page), `b-<uid>-enabled`, `b-<uid>-on_error`, `b-<uid>-timeout_ms`, and
  the config form's fields under the prefix `b-<uid>-config`; `b-<uid>-expanded` is "1" while
  the card shows its whole form rather than its one summary line.
- `op`: the button pressed: `save`, `add:<trigger>` (with `add-<trigger>` = action slug),
  `remove:<uid>`, `up:<uid>`, `down:<uid>`, `upgrade:<uid>`, `show:<uid>`, `toggle:<uid>` (expand
  or collapse a card; flow_editor.js does it without a round trip), `merge` / `overwrite` (after a
  stale save: see flows_app.editor_merge). A config form's own
  Add row / Remove row buttons carry no `op`; the config form notices them itself.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actions_app.models import Action, ActionVersion
from actions_app.triggers import FLOW_SLOTS
from core.http import parse_count
from flows_app.bindings import stored_secrets
from flows_app.editor_state import (
    Catalogue,
    EditorBinding,
    EditorSlot,
    EditorState,
    _carried_form,
    _config_form,
    _unsupported,
    switch_version,
)
from flows_app.models import Binding, Flow, FlowRevision, OnError

_UID = re.compile(r"^[0-9a-f]{32}$")


def state_from_revision(flow: Flow, revision: FlowRevision, catalogue: Catalogue) -> EditorState:
    """The editor opened on a saved revision."""
    rows = list(revision.bindings.select_related("action", "pinned_version").order_by("trigger", "position"))
    slots = []
    for trigger in FLOW_SLOTS[flow.kind]:
        bindings = []
        for row in (b for b in rows if b.trigger == trigger):
            secrets = stored_secrets(row)
            binding = EditorBinding(
                uid=row.key.hex,
                trigger=trigger,
                action=row.action,
                version=row.pinned_version,
                choices=_choices(catalogue, row.action, trigger, row.pinned_version),
                config_form=_config_form(
                    row.action, row.pinned_version, f"b-{row.key.hex}-config", secrets, initial=row.config
                ),
                stored_secrets=secrets,
                enabled=row.enabled,
                on_error=row.on_error,
                timeout_raw=str(row.timeout_ms),
            )
            _unsupported(binding)
            bindings.append(binding)
        slots.append(EditorSlot(trigger, bindings, catalogue.offered(trigger)))
    return EditorState(flow, revision.number, slots)


def _choices(catalogue: Catalogue, action: Action, trigger: str, pinned: ActionVersion) -> list[ActionVersion]:
    choices = catalogue.versions_for(action, trigger)
    if all(v.pk != pinned.pk for v in choices):
        choices = sorted([*choices, pinned], key=ActionVersion.semver_key, reverse=True)
    return choices


def state_from_post(post: Mapping[str, Any], flow: Flow, catalogue: Catalogue) -> EditorState:
    """The operator's unsaved state, exactly as posted; config forms are bound to what was typed."""
    assert flow.current_revision is not None
    current = {b.key.hex: b for b in flow.current_revision.bindings.select_related("action", "pinned_version").all()}
    expected_text = str(post.get("expected_revision", "")).strip()
    posted_revision = parse_count(expected_text, max_digits=9)
    expected = flow.current_revision.number if posted_revision is None else posted_revision
    state = EditorState(flow, expected, [], comment=str(post.get("revision_comment", "")).strip())
    seen: set[str] = set()
    for trigger in FLOW_SLOTS[flow.kind]:
        slot = EditorSlot(trigger, [], catalogue.offered(trigger))
        for uid in str(post.get(f"order-{trigger}", "")).split(","):
            uid = uid.strip()
            if not _UID.match(uid) or uid in seen:
                continue
            seen.add(uid)
            saved = current.get(uid)
            if saved is not None and saved.trigger != trigger:
                continue  # a binding never changes slot; an id from another slot is not this one
            binding = _binding_from_post(post, uid, trigger, catalogue, saved, state)
            if binding is not None:
                slot.bindings.append(binding)
        state.slots.append(slot)
    return state


def _binding_from_post(
    post: Mapping[str, Any],
    uid: str,
    trigger: str,
    catalogue: Catalogue,
    saved: Binding | None,
    state: EditorState,
) -> EditorBinding | None:
    prefix = f"b-{uid}"
    slug = str(post.get(f"{prefix}-action", ""))
    action = catalogue.actions.get(slug)
    if saved is None and slug not in catalogue.offerable:
        action = None  # a new binding needs an action the operator may see
    if action is None:
        state.notices.append(f"The action {slug!r} is no longer available, so it was left out of the flow.")
        return None
    shown = catalogue.version(action, str(post.get(f"{prefix}-shown", "")))
    if shown is None and saved is not None and saved.action_id == action.pk:
        shown = saved.pinned_version
    choices = catalogue.versions_for(action, trigger)
    if shown is None:
        if not choices:
            state.notices.append(f"{action.name} has no published version for {trigger}, so it was left out.")
            return None
        shown = choices[0]
    selected = catalogue.version(action, str(post.get(f"{prefix}-version", "")))
    # Secrets are kept only for the binding that holds them: same key, same action.
    secrets = stored_secrets(saved) if saved is not None and saved.action_id == action.pk else {}
    binding = EditorBinding(
        uid=uid,
        trigger=trigger,
        action=action,
        version=shown,
        choices=_choices(catalogue, action, trigger, shown),
        config_form=_config_form(action, shown, f"{prefix}-config", secrets, data=post),
        stored_secrets=secrets,
        enabled=bool(post.get(f"{prefix}-enabled")),
        on_error=str(post.get(f"{prefix}-on_error", OnError.BLOCK)),
        timeout_raw=str(post.get(f"{prefix}-timeout_ms", "")),
        is_new=saved is None,
        selected=selected if selected is not None and selected.pk != shown.pk else None,
        expanded=post.get(f"{prefix}-expanded") == "1",
    )
    _unsupported(binding)
    return binding


# ---- the editor's buttons ------------------------------------------------------------------------


@dataclass(frozen=True)
class EditorOp:
    # save, add, remove, up, down, upgrade, show, toggle, merge, overwrite, or "" to show the state again
    name: str
    target: str = ""

    @classmethod
    def parse(cls, raw: str) -> EditorOp:
        name, _, target = raw.partition(":")
        if name in {"save", "add", "remove", "up", "down", "upgrade", "show", "toggle", "merge", "overwrite"}:
            return cls(name, target)
        return cls("")


def apply_op(state: EditorState, op: EditorOp, post: Mapping[str, Any], catalogue: Catalogue) -> None:
    """Apply an editor button other than Save, then show every config form again unvalidated."""
    if op.name == "add":
        _add(state, op.target, str(post.get(f"add-{op.target}", "")), catalogue)
    found = state.find(op.target) if op.name in {"remove", "up", "down", "upgrade", "toggle"} else None
    if found is not None:
        slot, index = found
        binding = slot.bindings[index]
        if op.name == "remove":
            del slot.bindings[index]
            state.notices.append(f"Removed {binding.action.name} from {slot.trigger}; save the flow to apply it.")
        elif op.name in {"up", "down"}:
            other = index - 1 if op.name == "up" else index + 1
            if 0 <= other < len(slot.bindings):
                slot.bindings[index], slot.bindings[other] = slot.bindings[other], slot.bindings[index]
        elif op.name == "upgrade" and binding.newer is not None:
            binding.selected = binding.newer
        elif op.name == "toggle":
            binding.expanded, binding.focus_toggle = not binding.expanded, True
    for binding in state.bindings:
        form = binding.config_form
        if binding.selected is not None:
            switch_version(binding, binding.selected)
        elif form is not None and form.is_bound and not form.row_change_requested:
            binding.config_form = _carried_form(
                form, binding.action, binding.version, binding.config_prefix, binding.stored_secrets
            )


def _add(state: EditorState, trigger: str, slug: str, catalogue: Catalogue) -> None:
    slot = next((s for s in state.slots if s.trigger == trigger), None)
    if slot is None:
        return
    offer = next((o for o in slot.offered if o.action.slug == slug), None)
    if offer is None:
        slot.errors.append("Choose an action to add to this slot.")
        return
    action, version = offer.action, offer.newest
    uid = uuid.uuid4().hex
    binding = EditorBinding(
        uid=uid,
        trigger=trigger,
        action=action,
        version=version,
        choices=catalogue.versions_for(action, trigger),
        config_form=_config_form(action, version, f"b-{uid}-config", {}),
        stored_secrets={},
        is_new=True,
        expanded=True,  # a new binding's config is what the operator fills in next
    )
    _unsupported(binding)
    slot.bindings.append(binding)
    state.notices.append(f"Added {action.name} {version.version} to {trigger}; fill in its config and save the flow.")
