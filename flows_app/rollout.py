"""Rolling one custom action out to a tenant: create or version it, publish it, and pin the
version in named flow slots — all of it or nothing.

A version can never be deleted, so a rollout that saved a version and then failed to pin it
would leave the tenant half-changed. Here every step goes through the ordinary services (which
check the input and write the ordinary audit events) inside one outer transaction: when any step
refuses, the transaction rolls back and the tenant is exactly as it was. A dry run takes the same
path and rolls back at the end, so the plan it answers is what the real run would do, down to
the version label and the bindings whose config the new schema would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from actions_app.models import Action, ActionKind, ActionVersion, VersionStatus
from actions_app.triggers import FLOW_SLOTS
from actions_app.versioning import (
    InvalidDraft,
    NothingChanged,
    VersionDraft,
    create_custom_action,
    publish_version,
    save_action_version,
)
from flows_app.models import Binding, Flow
from flows_app.services import BindingSpec, InvalidBindings, StaleRevision, save_flow_slots
from tenants.acting import Acting
from tenants.models import Tenant

CREATED = "created"
NEW_VERSION = "new_version"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class PinTarget:
    """A flow slot whose bindings of the action should run the rolled-out version."""

    flow: str
    trigger: str


@dataclass(frozen=True)
class RolloutRequest:
    """What a rollout brings to one tenant. `attach_config` is the config of the binding a pin
    adds where the action is not yet in that slot; existing bindings keep their own config."""

    slug: str
    name: str
    draft: VersionDraft
    publish: bool = False
    pins: tuple[PinTarget, ...] = ()
    attach_config: dict[str, Any] = field(default_factory=dict)
    bump: str = "patch"
    explicit_version: str | None = None
    expected_flow_revisions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BindingChange:
    flow: str
    trigger: str
    position: int
    change: str  # "updated", "attached" or "unchanged"
    from_version: str | None
    to_version: str


@dataclass
class RolloutResult:
    slug: str
    dry_run: bool
    change: str  # CREATED, NEW_VERSION or UNCHANGED
    version: str
    previous_version: str | None
    status: str
    published_now: bool
    bindings: list[BindingChange] = field(default_factory=list)
    flow_revisions: dict[str, int] = field(default_factory=dict)

    @property
    def changed_anything(self) -> bool:
        return (
            self.change != UNCHANGED
            or self.published_now
            or any(binding.change != "unchanged" for binding in self.bindings)
        )


class InvalidPins(ValueError):
    """Pin targets that cannot be applied, keyed "<flow>:<trigger>[.<index>.<field>]"."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class _DryRunDone(Exception):
    """Raised at the end of a dry run so the outer transaction rolls back with its result."""

    def __init__(self, result: RolloutResult) -> None:
        super().__init__("dry run")
        self.result = result


def roll_out_action(
    tenant: Tenant,
    request: RolloutRequest,
    *,
    dry_run: bool = False,
    acting: Acting,
) -> RolloutResult:
    """Apply `request` to `tenant` in one transaction, or (dry run) say what that would do.

    Refused, with nothing written, by InvalidDraft / CompileFailed (the action or its
    TypeScript), InvalidPins (a flow slot, or a binding whose config the new schema refuses) and
    StaleRevision (a flow moved past `expected_flow_revisions`)."""
    flows = _pinned_flows(tenant, request.pins)
    # Slugs are immutable: a template slug is refused here, before any transaction opens.
    action = Action.objects.filter(tenant=tenant, slug=request.slug).first()
    if action is not None and action.kind != ActionKind.CUSTOM:
        raise InvalidDraft({"slug": [f"“{request.slug}” is a platform template; choose another slug."]})
    try:
        with transaction.atomic():
            result = _apply(tenant, action, request, flows, acting=acting, dry_run=dry_run)
            if dry_run:
                raise _DryRunDone(result)
    except _DryRunDone as done:
        return done.result
    return result


def _apply(
    tenant: Tenant,
    action: Action | None,
    request: RolloutRequest,
    flows: dict[str, Flow],
    *,
    acting: Acting,
    dry_run: bool,
) -> RolloutResult:
    previous: str | None = None
    if action is None:
        outcome = create_custom_action(tenant, name=request.name, slug=request.slug, draft=request.draft, acting=acting)
        version, change = outcome.version, CREATED
    else:
        latest = action.latest_version()
        previous = latest.version if latest else None
        try:
            version = save_action_version(
                action,
                request.draft,
                bump=request.bump,
                explicit_version=request.explicit_version,
                acting=acting,
            ).version
            change = NEW_VERSION
        except NothingChanged as unchanged:
            version, change = unchanged.latest, UNCHANGED
    published_now = False
    if request.publish and version.status != VersionStatus.PUBLISHED:
        version = publish_version(version, acting=acting)
        published_now = True
    result = RolloutResult(
        slug=request.slug,
        dry_run=dry_run,
        change=change,
        version=version.version,
        previous_version=previous,
        status=version.status,
        published_now=published_now,
    )
    _pin(version, request, flows, result, acting=acting)
    return result


def _pinned_flows(tenant: Tenant, pins: tuple[PinTarget, ...]) -> dict[str, Flow]:
    """The flows the pins name, after checking each pin names a slot of its flow."""
    found = {flow.slug: flow for flow in Flow.objects.filter(tenant=tenant, slug__in={p.flow for p in pins})}
    errors: dict[str, list[str]] = {}
    for pin in pins:
        where = f"{pin.flow}:{pin.trigger}"
        flow = found.get(pin.flow)
        if flow is None:
            errors[where] = [f"No flow {pin.flow!r} in this tenant."]
        elif pin.trigger not in FLOW_SLOTS[flow.kind]:
            errors[where] = [
                f"{pin.trigger!r} is not a slot of the {flow.kind} flow {flow.slug!r}; "
                f"its slots are {', '.join(FLOW_SLOTS[flow.kind])}."
            ]
    if errors:
        raise InvalidPins(errors)
    return found


def _pin(
    version: ActionVersion,
    request: RolloutRequest,
    flows: dict[str, Flow],
    result: RolloutResult,
    *,
    acting: Acting,
) -> None:
    """Point the action's bindings in each pinned slot at `version` (attaching one where the
    action is not in the slot yet): one new revision per flow that changes."""
    triggers_by_flow: dict[str, list[str]] = {}
    for pin in request.pins:
        wanted = triggers_by_flow.setdefault(pin.flow, [])
        if pin.trigger not in wanted:
            wanted.append(pin.trigger)
    for flow_slug, triggers in triggers_by_flow.items():
        # Locked so nobody saves the flow between our read of its bindings and our save.
        flow = (
            Flow.objects.select_for_update(no_key=True, of=("self",))
            .select_related("current_revision")
            .filter(pk=flows[flow_slug].pk)
            .first()
        )
        if flow is None or flow.current_revision is None:
            raise InvalidPins({flow_slug: [f"The flow {flow_slug!r} was deleted during the rollout."]})
        current = flow.current_revision
        expected = request.expected_flow_revisions.get(flow_slug, current.number)
        if expected != current.number:
            raise StaleRevision(current, expected)
        bindings = list(
            Binding.objects.filter(revision=current, trigger__in=triggers)
            .select_related("action", "pinned_version")
            .order_by("position")
        )
        slots: dict[str, list[BindingSpec]] = {}
        changes: list[BindingChange] = []
        for trigger in triggers:
            specs, slot_changes = _slot_specs(
                flow_slug, trigger, [b for b in bindings if b.trigger == trigger], version, request
            )
            changes += slot_changes
            if any(c.change != "unchanged" for c in slot_changes):
                slots[trigger] = specs
        result.bindings += changes
        if not slots:
            result.flow_revisions[flow_slug] = current.number
            continue
        try:
            revision = save_flow_slots(
                flow,
                slots,
                expected_revision=current.number,
                acting=acting,
                comment=f"Rollout of {version.action.slug} {version.version}",
            )
        except InvalidBindings as invalid:
            raise InvalidPins({f"{flow_slug}:{path}": messages for path, messages in invalid.errors.items()}) from None
        result.flow_revisions[flow_slug] = revision.number


def _slot_specs(
    flow_slug: str, trigger: str, bindings: list[Binding], version: ActionVersion, request: RolloutRequest
) -> tuple[list[BindingSpec], list[BindingChange]]:
    """The slot's bindings with this action's ones moved to `version`, and what changed."""
    specs: list[BindingSpec] = []
    changes: list[BindingChange] = []
    for binding in bindings:
        # `config` holds no secrets; matching by key makes save_flow_slots keep the stored ones.
        spec = BindingSpec(
            action=binding.action.slug,
            version=binding.pinned_version.version,
            config=binding.config,
            enabled=binding.enabled,
            on_error=binding.on_error,
            timeout_ms=binding.timeout_ms,
            key=binding.key,
        )
        if binding.action_id == version.action_id:
            spec.version = version.version
            changes.append(
                BindingChange(
                    flow=flow_slug,
                    trigger=trigger,
                    position=binding.position,
                    change="unchanged" if binding.pinned_version_id == version.pk else "updated",
                    from_version=binding.pinned_version.version,
                    to_version=version.version,
                )
            )
        specs.append(spec)
    if not changes:
        specs.append(BindingSpec(action=version.action.slug, version=version.version, config=request.attach_config))
        changes.append(
            BindingChange(
                flow=flow_slug,
                trigger=trigger,
                position=len(bindings),
                change="attached",
                from_version=None,
                to_version=version.version,
            )
        )
    return specs, changes
