"""After a stale save: merge the operator's unsaved flow with what was saved meanwhile.

Three versions of the flow take part, each as the editor shows it: the revision the operator
started from ("base"), the revision saved since ("theirs") and the posted editor ("mine").
Bindings are matched by their stable key. A binding only one side changed takes that side's
version; one both changed differently is a conflict, shown setting by setting. A conflict is only
ever resolved by the operator's explicit choice (`mine_wins`), and a merged flow is shown in the
editor before anything is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from actions_app.schema_forms.fields import SecretField
from flows_app.editor_form import state_from_revision
from flows_app.editor_state import Catalogue, EditorBinding, EditorSlot, EditorState, collect_config
from flows_app.models import Flow, FlowRevision

SECRET_SHOWN = "••••••"
GONE = "(removed)"


@dataclass(frozen=True)
class FieldConflict:
    label: str
    base: str
    theirs: str
    mine: str


@dataclass(frozen=True)
class Conflict:
    """A binding (or a slot's order) that both sides changed, and how."""

    trigger: str
    subject: str
    fields: list[FieldConflict]


@dataclass
class Merge:
    state: EditorState  # the merged flow, to be shown (not saved)
    conflicts: list[Conflict]
    taken_from_theirs: list[str] = field(default_factory=list)

    def notices(self) -> list[str]:
        """What the editor says above a merged flow: that it is not saved, then what came from where."""
        number = self.state.expected_revision
        lines = [
            f"Merged your changes with r{number}. Nothing is saved yet: check the flow below and press "
            f"“Save flow” to save it as r{number + 1}."
        ]
        if self.conflicts:
            replaced = ", ".join(f"{c.trigger} › {c.subject}" for c in self.conflicts)
            lines.append(f"Your version of {replaced} replaces the one saved in r{number}.")
        if self.taken_from_theirs:
            lines.append(f"Taken from r{number}: " + "; ".join(self.taken_from_theirs) + ".")
        return lines


def _settings(binding: EditorBinding | None, secrets: str) -> dict[str, str]:
    """A binding as comparable texts, setting by setting; secrets only as a mask and a status."""
    if binding is None:
        return {"Binding": GONE}
    shown = {
        "Binding": "in the flow",
        "Version": (binding.selected or binding.version).version,
        "Enabled": "enabled" if binding.enabled else "disabled",
        "On error": binding.on_error,
        "Timeout": f"{binding.timeout_raw.strip()} ms",
        "Secrets": secrets,
    }
    form = binding.config_form
    if form is not None:
        properties = form.schema.get("properties", {})
        for name, value in collect_config(form).items():
            if not properties.get(name, {}).get("writeOnly"):
                shown[f"config.{name}"] = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return shown


def _typed_a_secret(binding: EditorBinding) -> bool:
    form = binding.config_form
    return form is not None and any(isinstance(n, SecretField) and n.raw.strip() for n in form.root.fields)


def _reordered(side: list[str], base: list[str]) -> bool:
    return [k for k in side if k in base] != [k for k in base if k in side]


def _merged_order(base: list[str], mine: list[str], theirs: list[str], kept: set[str]) -> list[str]:
    """The slot's order: the side that reordered gives it; the other side's new bindings join
    before the binding they preceded there (at the end when they were last)."""
    primary, secondary = (mine, theirs) if _reordered(mine, base) else (theirs, mine)
    order = [k for k in primary if k in kept]
    for index in reversed(range(len(secondary))):
        key = secondary[index]
        if key in kept and key not in order:
            after = next((k for k in secondary[index + 1 :] if k in order), None)
            order.insert(order.index(after) if after is not None else len(order), key)
    return order


def merge_stale(
    flow: Flow,
    catalogue: Catalogue,
    mine: EditorState,
    base_revision: FlowRevision,
    theirs_revision: FlowRevision,
    *,
    mine_wins: bool = False,
) -> Merge:
    """Merge `mine` (edited from `base_revision`) with `theirs_revision`. With conflicts and not
    `mine_wins`, the returned state is `mine` unchanged: there is nothing to show as merged."""
    base = state_from_revision(flow, base_revision, catalogue)
    theirs = state_from_revision(flow, theirs_revision, catalogue)
    base_secrets = {b.uid: b.stored_secrets for b in base.bindings}
    conflicts: list[Conflict] = []
    slots: list[EditorSlot] = []
    taken: list[str] = []
    for base_slot, mine_slot, theirs_slot in zip(base.slots, mine.slots, theirs.slots, strict=True):
        trigger = base_slot.trigger
        was = {b.uid: b for b in base_slot.bindings}
        ours = {b.uid: b for b in mine_slot.bindings}
        other = {b.uid: b for b in theirs_slot.bindings}
        winners: dict[str, EditorBinding] = {}
        for uid in [*was, *[k for k in ours if k not in was], *[k for k in other if k not in was]]:
            outcome = _merge_binding(was.get(uid), ours.get(uid), other.get(uid), base_secrets.get(uid))
            if outcome.conflict:
                subject = (ours.get(uid) or other.get(uid) or was[uid]).action.name
                conflicts.append(Conflict(trigger, subject, outcome.conflict))
            if outcome.from_theirs:
                name = (outcome.winner or was[uid]).action.name
                taken.append(f"{trigger} › {name}{'' if outcome.winner else ' (removed)'}")
            if outcome.winner is not None:
                winners[uid] = outcome.winner
                # Opens the card (a note does), so what the merge changed is seen before saving.
                if outcome.from_theirs:
                    outcome.winner.notes.append(
                        f"As saved in r{theirs_revision.number}: changed there since you began."
                    )
                elif outcome.conflict:
                    outcome.winner.notes.append(f"Your version, replacing the one saved in r{theirs_revision.number}.")
        base_order, mine_order, theirs_order = list(was), list(ours), list(other)
        if _reordered(mine_order, base_order) and _reordered(theirs_order, base_order):
            common = [k for k in mine_order if k in theirs_order and k in base_order]
            if common != [k for k in theirs_order if k in mine_order and k in base_order]:
                conflicts.append(Conflict(trigger, "Order of the slot", [_order_row(was, other, ours)]))
        order = _merged_order(base_order, mine_order, theirs_order, set(winners))
        slots.append(EditorSlot(trigger, [winners[k] for k in order], mine_slot.offered))
    if conflicts and not mine_wins:
        return Merge(mine, conflicts)
    merged = EditorState(flow, theirs_revision.number, slots, comment=mine.comment)
    return Merge(merged, conflicts, taken)


@dataclass(frozen=True)
class _BindingOutcome:
    winner: EditorBinding | None  # None: not in the merged flow
    from_theirs: bool
    conflict: list[FieldConflict]  # [] when the two sides do not disagree


def _merge_binding(
    was: EditorBinding | None,
    mine: EditorBinding | None,
    theirs: EditorBinding | None,
    base_secrets: dict[str, object] | None,
) -> _BindingOutcome:
    """One binding key across the three versions. A conflict keeps mine: the flow is only merged
    at all then when the operator chose to overwrite."""
    old = _settings(was, SECRET_SHOWN)
    secret_changed = theirs is not None and theirs.stored_secrets != base_secrets
    new_theirs = _settings(theirs, SECRET_SHOWN + (" (replaced)" if secret_changed else ""))
    typed = mine is not None and _typed_a_secret(mine)
    new_mine = _settings(mine, SECRET_SHOWN + (" (you typed a new one)" if typed else ""))
    mine_changed, theirs_changed = new_mine != old, new_theirs != old
    conflict = []
    if mine_changed and theirs_changed and new_mine != new_theirs:
        labels = [k for k in {**old, **new_theirs, **new_mine} if _differs(k, old, new_theirs, new_mine)]
        conflict = [FieldConflict(k, old.get(k, "—"), new_theirs.get(k, "—"), new_mine.get(k, "—")) for k in labels]
    from_theirs = theirs_changed and not mine_changed
    return _BindingOutcome(theirs if from_theirs else mine, from_theirs, conflict)


def _differs(label: str, *sides: dict[str, str]) -> bool:
    return len({side.get(label, "—") for side in sides}) > 1


def _order_row(
    base: dict[str, EditorBinding], theirs: dict[str, EditorBinding], mine: dict[str, EditorBinding]
) -> FieldConflict:
    def names(side: dict[str, EditorBinding]) -> str:
        return ", ".join(b.action.name for b in side.values())

    return FieldConflict("Order", names(base), names(theirs), names(mine))
