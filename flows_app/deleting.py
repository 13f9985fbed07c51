"""Deleting a custom action or a flow (contract §14).

A delete is soft: the row gets `deleted_at` and from then on no list, lookup, offer or API sees
it (the models' default managers leave it out), while executions, versions, revisions and audit
events keep pointing at it, so history stays readable. The unique slug constraints only count
live rows, so a deleted slug can be used again. Here rather than in actions_app because whether
an action may go depends on the flows that use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from actions_app.models import Action, ActionKind
from audit_app.services import record
from flows_app.models import Binding, Flow, FlowTransaction
from tenants.acting import Acting


@dataclass(frozen=True)
class FlowUse:
    """A flow whose current revision binds the action: what blocks deleting it."""

    slug: str
    name: str


class CannotDelete(Exception):
    """The action or flow may not be deleted; `blocking_flows` names the flows in the way."""

    def __init__(self, message: str, blocking_flows: list[FlowUse] | None = None) -> None:
        super().__init__(message)
        self.blocking_flows = blocking_flows or []


def flows_using(action: Action) -> list[FlowUse]:
    """The live flows whose current revision binds `action`, by slug (every flow of the tenant,
    whether or not the operator may see it: any of them keeps the action in use)."""
    rows = (
        Binding.objects.current()
        .filter(action=action)
        .values_list("revision__flow__slug", "revision__flow__name")
        .distinct()
        .order_by("revision__flow__slug")
    )
    return [FlowUse(slug, name) for slug, name in rows]


def action_delete_refusal(action: Action) -> CannotDelete | None:
    """Why `action` cannot be deleted now, or None when it can."""
    if action.kind != ActionKind.CUSTOM:
        return CannotDelete(f"{action.slug} is a platform template; only custom actions can be deleted.")
    using = flows_using(action)
    if using:
        names = ", ".join(use.slug for use in using)
        return CannotDelete(f"{action.slug} is attached in the current revision of: {names}. Detach it first.", using)
    return None


def delete_action(action: Action, *, acting: Acting) -> None:
    """Delete a custom action no current flow revision uses, recorded as `action.deleted`.
    Refused with CannotDelete for a template or an attached action (naming the flows)."""
    with transaction.atomic():
        # The lock orders this against a flow save attaching the action at the same moment
        # (that save reads the action's row) and against a second delete.
        locked = Action.objects.select_for_update(no_key=True).filter(pk=action.pk).first()
        if locked is None:
            raise CannotDelete(f"{action.slug} is already deleted.")
        refusal = action_delete_refusal(locked)
        if refusal is not None:
            raise refusal
        now = timezone.now()
        Action.all_objects.filter(pk=locked.pk).update(deleted_at=now)
        record(
            tenant=locked.tenant,
            event_type="action.deleted",
            actor=acting.actor,
            meta=acting.meta,
            action_slug=locked.slug,
            before={"name": locked.name, "slug": locked.slug, "kind": locked.kind},
        )
    action.deleted_at = now


def flow_delete_refusal(flow: Flow) -> CannotDelete | None:
    """Why `flow` cannot be deleted, or None when it can."""
    if flow.is_system:
        return CannotDelete(f"{flow.slug} is the tenant's built-in {flow.kind} flow; it cannot be deleted.")
    return None


def delete_flow(flow: Flow, *, acting: Acting) -> None:
    """Delete a flow that is not a system flow, recorded as `flow.deleted`. Its transactions end
    (a later trigger of one finds no flow); its revisions and executions stay for history."""
    with transaction.atomic():
        locked = Flow.objects.select_for_update(no_key=True).filter(pk=flow.pk).first()
        if locked is None:
            raise CannotDelete(f"{flow.slug} is already deleted.")
        refusal = flow_delete_refusal(locked)
        if refusal is not None:
            raise refusal
        now = timezone.now()
        Flow.all_objects.filter(pk=locked.pk).update(deleted_at=now)
        FlowTransaction.objects.filter(flow=locked).delete()
        revision = locked.current_revision
        record(
            tenant=locked.tenant,
            event_type="flow.deleted",
            actor=acting.actor,
            meta=acting.meta,
            flow_slug=locked.slug,
            flow_revision=revision.number if revision else None,
            before={"name": locked.name, "kind": locked.kind, "enabled": locked.enabled},
        )
    flow.deleted_at = now
