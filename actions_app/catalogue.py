"""Reading the Actions catalogue: the list page's search, filters, sorting and one-page lookups.

Kept out of the view so the API's `GET /actions` and the page list the same rows the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q

from actions_app.models import Action, ActionKind, ActionQuerySet, ActionVersion, VersionStatus
from actions_app.triggers import ALL_TRIGGERS

SORTS = {
    "name": ("name", "slug"),
    "-name": ("-name", "-slug"),
    "kind": ("kind", "name"),
    "-kind": ("-kind", "name"),
    "attached": ("attached", "name"),
    "-attached": ("-attached", "name"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
}
DEFAULT_SORT = "name"


@dataclass(frozen=True)
class CatalogueQuery:
    """The list's state as it appears in the URL, cleaned of anything unknown."""

    q: str = ""
    kind: str = ""
    trigger: str = ""
    sort: str = DEFAULT_SORT

    @classmethod
    def from_params(cls, params: Any) -> CatalogueQuery:
        kind = params.get("kind", "")
        trigger = params.get("trigger", "")
        sort = params.get("sort", DEFAULT_SORT)
        return cls(
            q=params.get("q", "").strip()[:100],
            kind=kind if kind in ActionKind.values else "",
            trigger=trigger if trigger in ALL_TRIGGERS else "",
            sort=sort if sort in SORTS else DEFAULT_SORT,
        )

    def as_params(self, **overrides: str) -> dict[str, str]:
        values = {"q": self.q, "kind": self.kind, "trigger": self.trigger, "sort": self.sort, **overrides}
        return {key: value for key, value in values.items() if value and not (key == "sort" and value == DEFAULT_SORT)}


def search_catalogue(actions: ActionQuerySet, query: CatalogueQuery) -> ActionQuerySet:
    """Filter and order an already permission-scoped queryset of actions, each annotated with
    `attached` (where actions are attached is flows_app's to count: flows_app.action_usage)."""
    actions = actions.with_latest_version()
    if query.q:
        actions = actions.filter(Q(name__icontains=query.q) | Q(slug__icontains=query.q.lower()))
    if query.kind:
        actions = actions.filter(kind=query.kind)
    if query.trigger:
        # JSON text containment works the same on SQLite and PostgreSQL; the quotes make
        # the match exact on one slot name.
        latest_fits = ActionVersion.objects.filter(
            pk=OuterRef("latest_version_id"), compatible_triggers__icontains=f'"{query.trigger}"'
        )
        actions = actions.filter(Exists(latest_fits))
    return actions.order_by(*SORTS[query.sort])


def latest_versions_for(actions: list[Action]) -> dict[int, ActionVersion]:
    """The latest version row of each action on a page, in one query."""
    ids = [a.latest_version_id for a in actions if getattr(a, "latest_version_id", None)]  # type: ignore[attr-defined]
    versions = ActionVersion.objects.filter(pk__in=ids).only(
        "id", "action_id", "version", "compatible_triggers", "status"
    )
    return {v.action_id: v for v in versions}


def published_versions_for(actions: list[Action]) -> dict[int, list[str]]:
    """Published version labels of each action on a page, newest first, in one query."""
    labels: dict[int, list[str]] = {a.pk: [] for a in actions}
    rows = ActionVersion.objects.filter(action__in=actions, status=VersionStatus.PUBLISHED).values_list(
        "action_id", "version"
    )
    for action_id, label in rows:
        labels[action_id].append(label)
    return labels
