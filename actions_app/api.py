"""Actions endpoints of the management API."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from actions_app.catalogue import (
    CatalogueQuery,
    latest_versions_for,
    published_versions_for,
    search_catalogue,
)
from actions_app.models import Action
from tenants.api_auth import require_scope

router = Router(tags=["actions"])


class ActionSummary(Schema):
    slug: str
    name: str
    kind: str
    compatible_triggers: list[str]
    attached: int
    latest_version: str | None
    published_versions: list[str]


class ActionList(Schema):
    items: list[ActionSummary]


@router.get("", response=ActionList, summary="List the tenant's actions")
def list_actions(request: HttpRequest, q: str = "", kind: str = "", trigger: str = "") -> dict:
    token = require_scope(request, "actions:read")
    query = CatalogueQuery.from_params({"q": q, "kind": kind, "trigger": trigger})
    actions = list(search_catalogue(Action.objects.for_tenant(token.tenant), query))
    latest = latest_versions_for(actions)
    published = published_versions_for(actions)
    return {
        "items": [
            {
                "slug": action.slug,
                "name": action.name,
                "kind": action.kind,
                "compatible_triggers": latest[action.pk].compatible_triggers if action.pk in latest else [],
                "attached": action.attached,  # type: ignore[attr-defined]
                "latest_version": action.latest_version_label,  # type: ignore[attr-defined]
                "published_versions": published[action.pk],
            }
            for action in actions
        ]
    }
