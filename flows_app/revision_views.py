"""A flow's revision history, and the difference between any two revisions, slot by slot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse

from actions_app.triggers import FLOW_SLOTS
from core.http import parse_count
from flows_app.binding_diff import FieldChange, snapshot_changes
from flows_app.bindings import stored_secrets
from flows_app.models import Binding, Flow
from flows_app.services import binding_snapshot
from tenants.access import TenantAccess, get_visible_or_404, tenant_view
from tenants.pages import render_tenant_page

PAGE_SIZE = 50


@dataclass
class BindingChange:
    """One binding (followed across revisions by its `key`) and what happened to it."""

    status: str  # attached / detached / updated / unchanged
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def shown(self) -> dict[str, Any]:
        return self.after if self.after is not None else self.before or {}


@dataclass
class SlotDiff:
    trigger: str
    changed: list[BindingChange]
    unchanged: list[BindingChange]


def _field_changes(before: Binding, after: Binding) -> list[FieldChange]:
    secrets_changed = stored_secrets(before) != stored_secrets(after)
    return snapshot_changes(binding_snapshot(before), binding_snapshot(after), secrets_changed=secrets_changed)


def diff_revisions(kind: str, left: list[Binding], right: list[Binding]) -> list[SlotDiff]:
    """Per slot of the flow kind, the bindings of `right` compared with `left`, matched by key."""
    slots = []
    for trigger in FLOW_SLOTS[kind]:
        old = {b.key: b for b in left if b.trigger == trigger}
        new = {b.key: b for b in right if b.trigger == trigger}
        entries: list[tuple[int, BindingChange]] = []
        for key, binding in new.items():
            after = binding_snapshot(binding)
            if key not in old:
                entries.append((binding.position, BindingChange("attached", binding.action.slug, None, after)))
                continue
            changes = _field_changes(old[key], binding)
            status = "updated" if changes else "unchanged"
            before = binding_snapshot(old[key])
            entries.append((binding.position, BindingChange(status, binding.action.slug, before, after, changes)))
        for key, binding in old.items():
            if key not in new:
                detached = BindingChange("detached", binding.action.slug, binding_snapshot(binding), None)
                entries.append((binding.position, detached))
        ordered = [change for _, change in sorted(entries, key=lambda entry: entry[0])]
        slots.append(
            SlotDiff(
                trigger,
                changed=[c for c in ordered if c.status != "unchanged"],
                unchanged=[c for c in ordered if c.status == "unchanged"],
            )
        )
    return slots


def _flow_or_404(access: TenantAccess, flow_slug: str) -> Flow:
    return get_visible_or_404(access, "view_flow", Flow.objects.select_related("current_revision"), slug=flow_slug)


@tenant_view
def revision_list(request: HttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    flow = _flow_or_404(access, flow_slug)
    revisions = (
        flow.revisions.select_related("created_by").annotate(binding_count=Count("bindings")).order_by("-number")
    )
    page = Paginator(revisions, PAGE_SIZE).get_page(request.GET.get("page"))
    current = flow.current_revision.number if flow.current_revision else 1
    context = {
        "flow": flow,
        "page": page,
        "default_to": current,
        "default_from": max(current - 1, 1),
        "page_params": {},
    }
    return render_tenant_page(request, access, "flows_app/revisions.html", context)


def _revision_number(value: str | None, default: int) -> int:
    if not value:
        return default
    # parse_count, not int(): a number past bigint overflowed in the query, "٣" read as 3.
    number = parse_count(value, max_digits=9)
    if number is None:
        raise Http404("No such revision")
    return number


@tenant_view
def revision_diff(request: HttpRequest, access: TenantAccess, flow_slug: str) -> HttpResponse:
    flow = _flow_or_404(access, flow_slug)
    current = flow.current_revision.number if flow.current_revision else 1
    right_number = _revision_number(request.GET.get("to"), current)
    left_number = _revision_number(request.GET.get("from"), max(right_number - 1, 1))
    found = {
        r.number: r for r in flow.revisions.filter(number__in={left_number, right_number}).select_related("created_by")
    }
    if left_number not in found or right_number not in found:
        raise Http404("No such revision")
    bindings = list(
        Binding.objects.filter(revision__in=found.values()).select_related("action", "pinned_version", "revision")
    )
    left, right = found[left_number], found[right_number]
    slots = diff_revisions(
        flow.kind,
        [b for b in bindings if b.revision_id == left.pk],
        [b for b in bindings if b.revision_id == right.pk],
    )
    context = {
        "flow": flow,
        "left": left,
        "right": right,
        "numbers": list(flow.revisions.order_by("-number").values_list("number", flat=True)),
        "slots": slots,
        "change_count": sum(len(slot.changed) for slot in slots),
        "before_label": f"Before (r{left.number})",
        "after_label": f"After (r{right.number})",
    }
    return render_tenant_page(request, access, "flows_app/revision_diff.html", context)
