"""Roll back and promote (contract §14): every slot of a flow replaced, as ONE new revision, by the
bindings of another revision: an earlier one of the same flow (roll back) or one of another flow
of the same kind (promote).

Both write through `save_flow_slots`, so they get its lock, its If-Match check, its validators and
its `flow.action_*` audit events; nothing here writes a row itself, and history is never
rewritten. A plan comes first, so a preview shows the very difference (and the very refusals)
that confirming it will write.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

from actions_app.triggers import FLOW_SLOTS
from flows_app.bindings import binding_config, stored_secrets
from flows_app.models import Binding, Flow, FlowRevision
from flows_app.services import (
    BindingSpec,
    InvalidBindings,
    StaleRevision,
    copy_binding,
    match_previous,
    save_flow_slots,
    slot_problems,
)
from tenants.acting import Acting

# Above any revision a flow reaches, below what the database's integer column holds.
MAX_REVISION_NUMBER = 999_999_999


@dataclass(frozen=True)
class BindingProblem:
    """Why one incoming binding (or a whole slot, when `position` is None) cannot be saved."""

    field: str  # as the API names it: login.post-auth.0.config.url
    trigger: str
    position: int | None  # 1-based, as the editor shows it
    action: str
    message: str


@dataclass(frozen=True)
class Replacement:
    """What restoring or promoting would write into `flow`, worked out against its revision `base`."""

    flow: Flow
    base: FlowRevision
    source: FlowRevision
    note: str
    current: list[Binding]
    # Unsaved copies of the source's bindings, keyed as the save will key them, so a diff of
    # `current` against them is the diff the save makes (and audits).
    incoming: list[Binding]
    specs: dict[str, list[BindingSpec]]
    problems: list[BindingProblem]

    @property
    def changes_anything(self) -> bool:
        return _content(self.current) != _content(self.incoming)


class NoSuchRevision(LookupError):
    """The flow has no revision with that number."""


class NotPromotable(ValueError):
    """The two flows cannot be promoted into each other; `field` names the input at fault."""

    def __init__(self, message: str, field: str = "from") -> None:
        super().__init__(message)
        self.field = field


class NothingToChange(Exception):
    """The incoming bindings equal the current ones: a new revision would change nothing."""

    def __init__(self, plan: Replacement) -> None:
        super().__init__(f"{plan.flow.slug} r{plan.base.number} already has these bindings; nothing was saved.")
        self.plan = plan


class ReplacementRefused(Exception):
    """Some incoming binding cannot be saved any more; nothing was saved."""

    def __init__(self, plan: Replacement) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in plan.problems))
        self.plan = plan


def plan_restore(flow: Flow, number: int) -> Replacement:
    """Restoring revision `number` of `flow` over its current revision. NoSuchRevision if none."""
    # A number past the integer column would fail in the query instead of matching nothing.
    source = flow.revisions.filter(number=number).first() if 0 < number <= MAX_REVISION_NUMBER else None
    if source is None:
        raise NoSuchRevision(f"{flow.slug} has no revision {number}.")
    return _plan(flow, source, f"Restored revision {number}", keep_keys=True)


def plan_promote(source: Flow, target: Flow, *, source_revision: int | None = None) -> Replacement:
    """Promoting `source` (its current revision, or `source_revision`) into `target`."""
    if source.pk == target.pk:
        raise NotPromotable(f"Choose another flow than {target.slug}: a flow cannot be promoted into itself.")
    if source.kind != target.kind:
        raise NotPromotable(
            f"{source.slug} is a {source.kind} flow and {target.slug} a {target.kind} flow; "
            "only a flow of the same kind can be promoted."
        )
    if source_revision is None:
        revision = source.current_revision
    elif 0 < source_revision <= MAX_REVISION_NUMBER:
        revision = source.revisions.filter(number=source_revision).first()
    else:
        revision = None
    if revision is None:
        raise NotPromotable(f"{source.slug} has no revision {source_revision}.", field="from_revision")
    # Bindings of another flow have other keys: they are matched to the target's by action, as a
    # save from the editor matches them, so changing a threshold reads as an update, not a swap.
    return _plan(target, revision, f"Promoted from {source.slug} r{revision.number}", keep_keys=False)


def restore_revision(
    flow: Flow,
    number: int,
    *,
    expected_revision: int,
    acting: Acting,
) -> FlowRevision:
    """Roll `flow` back: a new revision equal to revision `number` (bindings, pinned versions,
    config with secrets, enabled, on_error, timeout, positions), audited as `flow.action_*`
    changes noted "Restored revision N". Refused with StaleRevision, NoSuchRevision,
    ReplacementRefused (e.g. an action deleted since) or NothingToChange; nothing saved then."""
    return carry_out(plan_restore(flow, number), expected_revision=expected_revision, acting=acting)


def promote_flow(
    source: Flow,
    target: Flow,
    *,
    expected_revision: int,
    source_revision: int | None = None,
    acting: Acting,
) -> FlowRevision:
    """Promote: the bindings of `source` replace every slot of `target` (same kind) as one new
    revision of the target, audited as `flow.action_*` changes noted "Promoted from …". Refused
    with NotPromotable, StaleRevision, ReplacementRefused or NothingToChange; nothing saved then."""
    plan = plan_promote(source, target, source_revision=source_revision)
    return carry_out(plan, expected_revision=expected_revision, acting=acting)


def carry_out(plan: Replacement, *, expected_revision: int, acting: Acting) -> FlowRevision:
    """Write a plan (the one a preview showed) as the flow's new revision, if the flow is still at
    `expected_revision` and the plan can be saved; refused as restore_revision/promote_flow are."""
    if plan.base.number != expected_revision:
        raise StaleRevision(plan.base, expected_revision)
    if plan.problems:
        raise ReplacementRefused(plan)
    if not plan.changes_anything:
        raise NothingToChange(plan)
    try:
        return save_flow_slots(
            plan.flow,
            plan.specs,
            expected_revision=expected_revision,
            acting=acting,
            comment=plan.note,
            audit_note=plan.note,
        )
    except InvalidBindings as invalid:
        # Something the plan relied on changed before the save took its lock.
        refused = dataclasses.replace(plan, problems=_problems(invalid.errors, plan.specs))
        raise ReplacementRefused(refused) from invalid


def _plan(flow: Flow, source: FlowRevision, note: str, *, keep_keys: bool) -> Replacement:
    base = flow.current_revision
    assert base is not None
    current = list(base.bindings.select_related("action", "pinned_version").order_by("trigger", "position"))
    bringing = list(source.bindings.select_related("action", "pinned_version").order_by("trigger", "position"))
    specs: dict[str, list[BindingSpec]] = {}
    incoming: list[Binding] = []
    deleted: dict[str, str] = {}
    for trigger in FLOW_SLOTS[flow.kind]:
        here = [b for b in bringing if b.trigger == trigger]
        specs[trigger] = [_spec(b, keep_keys) for b in here]
        previous = match_previous(specs[trigger], [b for b in current if b.trigger == trigger])
        for index, (binding, spec, matched) in enumerate(zip(here, specs[trigger], previous, strict=True)):
            spec.key = matched.key if matched is not None else (spec.key or uuid.uuid4())
            incoming.append(copy_binding(binding, None, key=spec.key, position=index))
            if binding.action.deleted_at is not None:
                deleted[f"{trigger}.{index}"] = binding.action.slug
    errors = slot_problems(flow, specs, base)
    for where, slug in deleted.items():
        # The save looks actions up by slug: a deleted one is "not found", or worse a new action
        # that took its slug. Say what happened instead, and nothing else about that binding.
        errors = {path: messages for path, messages in errors.items() if not path.startswith(f"{where}.")}
        errors[f"{where}.action"] = [
            f"The action {slug} was deleted after r{source.number} of {source.flow.slug} was saved; "
            "it cannot be attached again."
        ]
    return Replacement(flow, base, source, note, current, incoming, specs, _problems(errors, specs))


def _spec(binding: Binding, keep_key: bool) -> BindingSpec:
    return BindingSpec(
        action=binding.action.slug,
        version=binding.pinned_version.version,
        config=binding_config(binding),
        enabled=binding.enabled,
        on_error=binding.on_error,
        timeout_ms=binding.timeout_ms,
        key=binding.key if keep_key else None,
        keep_stored_secrets=False,
    )


def _content(bindings: list[Binding]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            b.trigger,
            b.position,
            str(b.key),
            b.action_id,
            b.pinned_version_id,
            json.dumps(b.config, sort_keys=True),
            json.dumps(stored_secrets(b), sort_keys=True),
            b.enabled,
            b.on_error,
            b.timeout_ms,
        )
        for b in bindings
    )


def _problems(errors: dict[str, list[str]], specs: dict[str, list[BindingSpec]]) -> list[BindingProblem]:
    problems = []
    for path, messages in errors.items():
        trigger = next((t for t in specs if path == t or path.startswith(f"{t}.")), "")
        index_text = path[len(trigger) + 1 :].split(".", 1)[0]
        index = int(index_text) if trigger and index_text.isdigit() else None
        action = specs[trigger][index].action if index is not None and index < len(specs[trigger]) else ""
        position = index + 1 if index is not None else None
        problems += [BindingProblem(path, trigger, position, action, message) for message in messages]
    return problems
