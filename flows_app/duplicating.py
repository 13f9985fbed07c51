"""Duplicating a flow: a new flow of the same kind whose first revision holds the bindings of the
source's current revision, e.g. a `login-staging` to try changes on before promoting them back."""

from __future__ import annotations

import uuid

from django.db import transaction

from audit_app.services import record_many
from flows_app.models import Binding, Flow
from flows_app.services import binding_event, binding_snapshot, copy_binding, create_flow
from tenants.acting import Acting


def free_copy_slug(source: Flow) -> str:
    """A slug for a copy of `source` that no live flow of its tenant has: `<slug>-copy`, then
    `<slug>-copy-2`, … (kept within the 80 characters a slug may have)."""
    base = f"{source.slug[:75].rstrip('-')}-copy"
    taken = set(Flow.objects.filter(tenant=source.tenant, slug__startswith=base).values_list("slug", flat=True))
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def duplicate_flow(source: Flow, *, name: str, slug: str, acting: Acting) -> Flow:
    """Create `slug` as a copy of `source`'s current revision: the same bindings, their config and
    secrets copied as stored (still encrypted), under new binding keys so the copy's rate-limit
    counters and audit diffs are its own. Recorded as `flow.created` naming the source, and one
    `flow.action_attached` per binding. Refused with FlowSlugTaken when the slug is in use."""
    with transaction.atomic():
        # The revision running now, not the one the form showed: a duplicate copies the flow as it is.
        base = Flow.objects.select_related("current_revision__flow").get(pk=source.pk).current_revision
        assert base is not None
        flow = create_flow(source.tenant, name=name, slug=slug, kind=source.kind, copy_of=base, acting=acting)
        revision = flow.current_revision
        assert revision is not None
        copies = [
            copy_binding(binding, revision, key=uuid.uuid4())
            for binding in base.bindings.select_related("action", "pinned_version").order_by("trigger", "position")
        ]
        Binding.objects.bulk_create(copies)
        attached = [
            binding_event(
                "flow.action_attached",
                copy,
                flow,
                revision,
                None,
                binding_snapshot(copy),
                acting=acting,
                note=revision.comment,
            )
            for copy in copies
        ]
        record_many(attached)
    return flow
