"""Actions endpoints of the management API (contract §9)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema

from actions_app.catalogue import (
    CatalogueQuery,
    attached_count,
    latest_versions_for,
    published_versions_for,
    search_catalogue,
)
from actions_app.harness import run_in_harness
from actions_app.models import Action, ActionVersion
from actions_app.versioning import (
    CompileFailed,
    InvalidDraft,
    NothingChanged,
    VersionDraft,
    create_custom_action,
    publish_version,
    save_action_version,
    version_snapshot,
)
from audit_app.services import Actor, RequestMeta
from tenants.api_auth import ApiError, require_scope
from tenants.models import ApiToken

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


class VersionSummary(Schema):
    version: str
    status: str
    compatible_triggers: list[str]
    checksum: str
    saved_with_errors: bool
    author: str | None
    created_at: datetime
    published_at: datetime | None


class VersionDetail(VersionSummary):
    source: str
    config_schema: dict[str, Any]


class SavedVersion(VersionSummary):
    created: bool = Field(description="False when the content equalled the latest version: nothing was created.")


class ActionDetail(ActionSummary):
    description: str
    versions: list[VersionSummary]


class ActionCreate(Schema):
    name: str
    slug: str = ""
    compatible_triggers: list[str]
    config_schema: dict[str, Any] = Field(default_factory=dict)
    source: str
    save_anyway: bool = False


class VersionCreate(Schema):
    source: str
    config_schema: dict[str, Any] | None = None
    compatible_triggers: list[str] | None = None
    bump: Literal["patch", "minor", "major"] = "patch"
    version: str | None = None
    save_anyway: bool = False


class TestRun(Schema):
    input: dict[str, Any]
    config: dict[str, Any] = Field(default_factory=dict)


class TestOutcome(Schema):
    result: dict[str, Any] | None
    logs: list[dict[str, str]]
    duration_ms: float | None
    error: dict[str, str] | None


def _version_summary(version: ActionVersion) -> dict[str, Any]:
    return {
        **version_snapshot(version),
        "author": version.author.get_username() if version.author else None,
        "created_at": version.created_at,
        "published_at": version.published_at,
    }


def _summaries(actions: list[Action]) -> list[dict[str, Any]]:
    latest = latest_versions_for(actions)
    published = published_versions_for(actions)
    return [
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


def _action_or_404(token: ApiToken, slug: str) -> Action:
    action = (
        Action.objects.for_tenant(token.tenant)
        .with_latest_version()
        .annotate(attached=attached_count())
        .filter(slug=slug)
        .first()
    )
    if action is None:
        raise ApiError(404, "not_found", f"No action with the slug {slug!r} in this tenant.")
    return action


def _action_detail(token: ApiToken, slug: str) -> dict[str, Any]:
    action = _action_or_404(token, slug)
    versions = list(action.versions.select_related("author"))
    return {
        **_summaries([action])[0],
        "description": action.description,
        "versions": [_version_summary(v) for v in versions],
    }


def _draft_errors(error: InvalidDraft) -> ApiError:
    details = [{"field": name, "message": message} for name, messages in error.errors.items() for message in messages]
    return ApiError(422, "invalid_action", "The action or version is invalid.", details)


def _type_errors(failed: CompileFailed) -> ApiError:
    details = [{"line": d.line, "column": d.column, "message": d.message, "code": d.code} for d in failed.diagnostics]
    return ApiError(
        422,
        "type_errors",
        f"The TypeScript has {len(details)} error(s); nothing was saved. Pass save_anyway to save regardless.",
        details,
    )


def _actor(request: HttpRequest, token: ApiToken) -> tuple[Actor, RequestMeta]:
    return Actor.for_token(token), RequestMeta.from_request(request)


@router.get("", response=ActionList, summary="List the tenant's actions")
def list_actions(request: HttpRequest, q: str = "", kind: str = "", trigger: str = "") -> dict[str, Any]:
    token = require_scope(request, "actions:read")
    query = CatalogueQuery.from_params({"q": q, "kind": kind, "trigger": trigger})
    actions = list(search_catalogue(Action.objects.for_tenant(token.tenant), query))
    return {"items": _summaries(actions)}


@router.post("", response={201: ActionDetail}, summary="Create a custom action; its first version is 0.1.0")
def create_action(request: HttpRequest, body: ActionCreate) -> tuple[int, dict[str, Any]]:
    token = require_scope(request, "actions:write")
    actor, meta = _actor(request, token)
    draft = VersionDraft(body.source, body.config_schema, body.compatible_triggers)
    try:
        outcome = create_custom_action(
            token.tenant,
            name=body.name,
            slug=body.slug,
            draft=draft,
            author=None,
            actor=actor,
            meta=meta,
            save_anyway=body.save_anyway,
        )
    except InvalidDraft as error:
        raise _draft_errors(error) from error
    except CompileFailed as failed:
        raise _type_errors(failed) from failed
    return 201, _action_detail(token, outcome.version.action.slug)


@router.get("/{slug}", response=ActionDetail, summary="One action with its versions")
def get_action(request: HttpRequest, slug: str) -> dict[str, Any]:
    token = require_scope(request, "actions:read")
    return _action_detail(token, slug)


@router.post(
    "/{slug}/versions",
    response={200: SavedVersion, 201: SavedVersion},
    summary="Save a new version (201); identical content creates nothing (200, created=false)",
)
def create_version(request: HttpRequest, slug: str, body: VersionCreate) -> tuple[int, dict[str, Any]]:
    token = require_scope(request, "actions:write")
    action = _action_or_404(token, slug)
    latest = action.versions.order_by("-major", "-minor", "-patch").first()
    draft = VersionDraft(
        body.source,
        body.config_schema if body.config_schema is not None else (latest.config_schema if latest else {}),
        body.compatible_triggers
        if body.compatible_triggers is not None
        else (list(latest.compatible_triggers) if latest else []),
    )
    actor, meta = _actor(request, token)
    try:
        outcome = save_action_version(
            action,
            draft,
            author=None,
            actor=actor,
            meta=meta,
            bump=body.bump,
            explicit_version=body.version,
            save_anyway=body.save_anyway,
        )
    except InvalidDraft as error:
        raise _draft_errors(error) from error
    except CompileFailed as failed:
        raise _type_errors(failed) from failed
    except NothingChanged as unchanged:
        return 200, {**_version_summary(unchanged.latest), "created": False}
    return 201, {**_version_summary(outcome.version), "created": True}


def _version_or_404(token: ApiToken, slug: str, label: str) -> ActionVersion:
    version = (
        ActionVersion.objects.select_related("action", "author")
        .filter(action__tenant=token.tenant, action__slug=slug, version=label)
        .first()
    )
    if version is None:
        raise ApiError(404, "not_found", f"No version {label!r} of action {slug!r} in this tenant.")
    return version


@router.get("/{slug}/versions/{version}", response=VersionDetail, summary="One version, source included")
def get_version(request: HttpRequest, slug: str, version: str) -> dict[str, Any]:
    token = require_scope(request, "actions:read")
    found = _version_or_404(token, slug, version)
    return {**_version_summary(found), "source": found.source, "config_schema": found.config_schema}


@router.post("/{slug}/versions/{version}/publish", response=VersionSummary, summary="Publish a version")
def publish(request: HttpRequest, slug: str, version: str) -> dict[str, Any]:
    token = require_scope(request, "actions:publish")
    found = _version_or_404(token, slug, version)
    actor, meta = _actor(request, token)
    try:
        published = publish_version(found, actor=actor, meta=meta)
    except InvalidDraft as error:
        raise _draft_errors(error) from error
    return _version_summary(published)


@router.post("/{slug}/versions/{version}/test", response=TestOutcome, summary="Run a version with an input")
def test_version(request: HttpRequest, slug: str, version: str, body: TestRun) -> dict[str, Any]:
    token = require_scope(request, "runtime:execute")
    found = _version_or_404(token, slug, version)
    run = run_in_harness(
        tenant=token.tenant,
        action_slug=slug,
        raw_input=json.dumps(body.input),
        config=body.config,
        config_schema=found.config_schema,
        version=found,
    )
    if run.execution is None:
        details = [{"field": name, "message": m} for name, messages in run.input_errors.items() for m in messages]
        raise ApiError(422, "invalid_test_input", "The test input or config is invalid.", details)
    execution = run.execution
    return {
        "result": execution.result,
        "logs": execution.logs,
        "duration_ms": round(execution.duration_ms, 3),
        "error": {"code": execution.error.code, "message": execution.error.message} if execution.error else None,
    }
