"""Attaching one action to one slot of a flow from the action's page ("Attach to a flow…"): the
slots where a version may run, and the save that appends it to a slot as a new revision."""

from __future__ import annotations

from dataclasses import dataclass

from actions_app.models import Action, ActionVersion, VersionStatus
from actions_app.triggers import FLOW_SLOTS
from flows_app.models import Binding, Flow, FlowRevision
from flows_app.services import BindingSpec, save_flow_slots
from tenants.acting import Acting


@dataclass(frozen=True)
class AttachTarget:
    """One slot of one flow that a version may be attached to."""

    flow: Flow
    trigger: str

    @property
    def value(self) -> str:
        # ":" occurs in no flow slug and no trigger name, so the pair is read back exactly.
        return f"{self.flow.slug}:{self.trigger}"

    @property
    def label(self) -> str:
        return f"{self.flow.name} ({self.flow.slug}) · {self.trigger}"


def published_versions(action: Action) -> list[ActionVersion]:
    """The versions a flow may pin (contract §5), newest first."""
    return list(
        action.versions.filter(status=VersionStatus.PUBLISHED)
        .defer("source", "compiled_js", "source_map")
        .order_by("-major", "-minor", "-patch")
    )


def attach_targets(version: ActionVersion, flows: list[Flow]) -> list[AttachTarget]:
    """Each slot of `flows` that `version` declares it can run in, flows in the given order, slots
    in their running order; incompatible slots are simply not there."""
    return [
        AttachTarget(flow, trigger)
        for flow in flows
        for trigger in FLOW_SLOTS[flow.kind]
        if trigger in version.compatible_triggers
    ]


def attach_action(
    flow: Flow,
    trigger: str,
    spec: BindingSpec,
    *,
    expected_revision: int,
    acting: Acting,
) -> FlowRevision:
    """Append `spec` after the bindings `trigger` holds in revision `expected_revision` of `flow`,
    as the flow's next revision (audited as `flow.action_attached` by save_flow_slots). The slot's
    other bindings go through unchanged, their secrets kept. Refused as save_flow_slots refuses:
    StaleRevision when the flow moved past `expected_revision`, InvalidBindings when anything in
    the slot is not accepted (the new binding is the last index)."""
    seen = FlowRevision.objects.filter(flow=flow, number=expected_revision).first()
    # Read from the revision the operator saw, not the current one: if they differ the save
    # below refuses as stale, so nobody else's change is carried over unseen.
    here = (
        Binding.objects.filter(revision=seen, trigger=trigger).select_related("action", "pinned_version")
        if seen
        else Binding.objects.none()
    )
    kept = [
        BindingSpec(
            action=binding.action.slug,
            version=binding.pinned_version.version,
            config=dict(binding.config),
            enabled=binding.enabled,
            on_error=binding.on_error,
            timeout_ms=binding.timeout_ms,
            key=binding.key,
        )
        for binding in here.order_by("position")
    ]
    return save_flow_slots(
        flow,
        {trigger: [*kept, spec]},
        expected_revision=expected_revision,
        acting=acting,
        comment=f"Attached {spec.action} {spec.version} to {trigger}",
    )
