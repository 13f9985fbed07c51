"""Actions endpoints of the management API (contract §9)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Path, Query, Router, Schema
from pydantic import ConfigDict

from actions_app.catalogue import (
    CatalogueQuery,
    latest_versions_for,
    published_versions_for,
    search_catalogue,
)
from actions_app.harness import run_in_harness
from actions_app.models import Action, ActionVersion
from actions_app.triggers import ALL_TRIGGERS
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
from core.api_errors import ApiError
from core.api_paging import (
    CURSOR_DESCRIPTION,
    DEFAULT_LIMIT,
    LIMIT_DESCRIPTION,
    decode_cursor,
    encode_cursor,
    page_size,
)
from core.api_types import JsonObject, Text
from flows_app.action_usage import attached_count, with_attached_count
from flows_app.deleting import CannotDelete, delete_action
from tenants.api_auth import request_acting, request_token
from tenants.api_docs import responses, scope_required
from tenants.idempotency import IDEMPOTENCY_HEADER, KEY_DESCRIPTION, KEY_PATTERN, answer_once
from tenants.models import ApiToken

router = Router(tags=["actions"])

SAMPLE_SOURCE = """export async function execute(input: ActionInput): Promise<ActionResult> {
  if (input.context.risk.score > 80) return { kind: "block", reason: "Too risky" };
  return { kind: "continue" };
}
"""
SAMPLE_TIME = "2025-01-31T14:30:00Z"


ActionSlug = Annotated[Text, Path(description="The action's slug.", examples=["risk-gate"])]
VersionLabel = Annotated[Text, Path(description="A version label such as 0.1.0.", examples=["0.1.0"])]

if TYPE_CHECKING:
    TriggerName = str
else:
    # A Literal of every slot, so the OpenAPI document lists them and a typo is a 422 naming `trigger`.
    TriggerName = Literal[tuple(ALL_TRIGGERS)]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class ActionSummary(Schema):
    model_config = _examples(
        {
            "slug": "risk-gate",
            "name": "Risk gate",
            "kind": "custom",
            "compatible_triggers": ["login.post-auth"],
            "attached": 1,
            "latest_version": "0.2.0",
            "published_versions": ["0.1.0"],
        }
    )

    slug: str
    name: str
    kind: str = Field(description="`template` (ships with the platform) or `custom`.")
    compatible_triggers: list[str] = Field(description="Trigger slots the latest version can be bound to.")
    attached: int = Field(description="Bindings of the action in the revisions flows currently run.")
    latest_version: str | None
    published_versions: list[str] = Field(description="Published version labels, newest first.")


class ActionList(Schema):
    items: list[ActionSummary]
    next: str | None = Field(description="Cursor of the next page, or null on the last page.")


class VersionSummary(Schema):
    model_config = _examples(
        {
            "version": "0.2.0",
            "status": "draft",
            "compatible_triggers": ["login.post-auth"],
            "egress_hosts": ["api.example.com"],
            "checksum": "9f2c1d0e4b7a…",
            "saved_with_errors": False,
            "author": None,
            "created_at": SAMPLE_TIME,
            "published_at": None,
        }
    )

    version: str
    status: str = Field(description="`draft` or `published`.")
    compatible_triggers: list[str]
    egress_hosts: list[str] = Field(description="Hosts the code may call with fetch (contract §11).")
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
    model_config = _examples(
        {
            "name": "Geo fence",
            "slug": "geo-fence",
            "compatible_triggers": ["login.post-auth"],
            "config_schema": {"type": "object", "properties": {}},
            "source": SAMPLE_SOURCE,
        }
    )

    name: Text
    slug: Text = Field("", description="Derived from the name when left out.")
    compatible_triggers: list[Text]
    config_schema: JsonObject = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (an object schema) of the binding config; no settings when left out.",
    )
    source: Text = Field(description="TypeScript exporting `execute(input)`.")
    egress_hosts: list[Text] = Field(
        default_factory=list,
        description="Hosts the code may call with fetch: `api.example.com`, `*.example.com`; `:port` when not 443.",
    )
    save_anyway: bool = Field(False, description="Save even with TypeScript errors (the version cannot be published).")


class VersionCreate(Schema):
    model_config = _examples({"source": SAMPLE_SOURCE, "bump": "minor"})

    source: Text
    config_schema: JsonObject | None = Field(None, description="Defaults to the latest version's.")
    compatible_triggers: list[Text] | None = Field(None, description="Defaults to the latest version's.")
    egress_hosts: list[Text] | None = Field(None, description="Defaults to the latest version's.")
    bump: Literal["patch", "minor", "major"] = "patch"
    version: Text | None = Field(None, description="An explicit version higher than the latest, instead of a bump.")
    save_anyway: bool = False


class TestRun(Schema):
    model_config = _examples(
        {
            "input": {
                "trigger": "login.post-auth",
                "user": {"id": "user_1", "email": "jane@example.com", "groups": ["staff"]},
                "request": {"ip": "203.0.113.9", "hostname": "login.example.com"},
                "context": {"risk": {"score": 90}},
            },
            "config": {},
        }
    )

    input: JsonObject = Field(
        description="The action input as the editor's harness takes it: `trigger`, `user` (with an `email`), "
        "and optionally `request`, `state` and `context.risk.score` (0–100)."
    )
    config: JsonObject = Field(default_factory=dict)


class TestOutcome(Schema):
    model_config = _examples(
        {
            "result": {"kind": "block", "reason": "Too risky"},
            "logs": [{"level": "log", "message": "checked"}],
            "duration_ms": 1.372,
            "error": None,
        }
    )

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


@router.get(
    "",
    response=responses({200: ActionList}, 400, 403, 422),
    summary="List the tenant's actions",
    **scope_required("actions:read"),
)
def list_actions(
    request: HttpRequest,
    q: Text = Query("", description="Words in the name or slug.", max_length=100),  # noqa: B008
    kind: Literal["template", "custom"] | None = Query(None, description="Only actions of this kind."),
    trigger: TriggerName | None = Query(None, description="Only actions whose latest version fits this slot."),  # noqa: B008
    limit: int = Query(DEFAULT_LIMIT, description=LIMIT_DESCRIPTION),
    cursor: Text = Query("", description=CURSOR_DESCRIPTION),  # noqa: B008
) -> dict[str, Any]:
    """Templates and custom actions of the token's tenant, ordered by name then slug, as the console's
    catalogue lists them; filters as on that page. Scope `actions:read`."""
    token = request_token(request)
    query = CatalogueQuery.from_params({"q": q, "kind": kind or "", "trigger": trigger or ""})
    size = page_size(limit)
    actions = search_catalogue(with_attached_count(Action.objects.for_tenant(token.tenant)), query)
    if cursor:
        name, slug = decode_cursor("actions", cursor, 2)
        actions = actions.filter(Q(name__gt=name) | Q(name=name, slug__gt=slug))
    page = list(actions[: size + 1])
    more = len(page) > size
    page = page[:size]
    return {
        "items": _summaries(page),
        "next": encode_cursor("actions", [page[-1].name, page[-1].slug]) if more else None,
    }


@router.post(
    "",
    response=responses({201: ActionDetail}, 403, 422),
    summary="Create a custom action; its first version is 0.1.0",
    **scope_required("actions:write"),
)
def create_action(
    request: HttpRequest,
    body: ActionCreate,
    response: HttpResponse,
    idempotency_key: str | None = Header(
        None, alias=IDEMPOTENCY_HEADER, description=KEY_DESCRIPTION, pattern=KEY_PATTERN
    ),
) -> tuple[int, Any]:
    """Creates the action and its version 0.1.0 (a draft) from TypeScript that must type-check; a 422
    with `details: [{line, column, message}]` lists the TypeScript errors unless `save_anyway`.
    Scope `actions:write`. Send `Idempotency-Key` to make a retry safe."""
    token = request_token(request)

    def create() -> tuple[int, dict[str, Any]]:
        draft = VersionDraft(body.source, body.config_schema, body.compatible_triggers, body.egress_hosts)
        try:
            outcome = create_custom_action(
                token.tenant,
                name=body.name,
                slug=body.slug,
                draft=draft,
                save_anyway=body.save_anyway,
                acting=request_acting(request),
            )
        except InvalidDraft as error:
            raise _draft_errors(error) from error
        except CompileFailed as failed:
            raise _type_errors(failed) from failed
        return 201, _action_detail(token, outcome.version.action.slug)

    return answer_once(request, response, token.tenant, body.model_dump(), create)


@router.get(
    "/{slug}",
    response=responses({200: ActionDetail}, 403, 404, 422),
    summary="One action with its versions",
    **scope_required("actions:read"),
)
def get_action(request: HttpRequest, slug: ActionSlug) -> dict[str, Any]:
    """The action as listed, plus its description and every version (newest first). Scope `actions:read`."""
    token = request_token(request)
    return _action_detail(token, slug)


@router.delete(
    "/{slug}",
    response=responses({204: None}, 403, 404, 409, 422),
    summary="Delete a custom action that no current flow revision uses",
    **scope_required("actions:write"),
)
def delete_action_endpoint(request: HttpRequest, slug: ActionSlug) -> tuple[int, None]:
    """Deletes a custom action (contract §14); 409 names the flows whose current revision uses it,
    or says it is a platform template. Its versions, executions and audit events stay readable,
    and the slug can be used again. Scope `actions:write`."""
    token = request_token(request)
    action = Action.objects.for_tenant(token.tenant).filter(slug=slug).first()
    if action is None:
        raise ApiError(404, "not_found", f"No action with the slug {slug!r} in this tenant.")
    try:
        delete_action(action, acting=request_acting(request))
    except CannotDelete as refused:
        details = [{"flow": use.slug, "name": use.name} for use in refused.blocking_flows]
        raise ApiError(409, "action_in_use" if details else "cannot_delete", str(refused), details) from refused
    return 204, None


@router.post(
    "/{slug}/versions",
    response=responses({200: SavedVersion, 201: SavedVersion}, 403, 404, 422),
    summary="Save a new version of a custom action",
    **scope_required("actions:write"),
)
def create_version(
    request: HttpRequest,
    slug: ActionSlug,
    body: VersionCreate,
    response: HttpResponse,
    idempotency_key: str | None = Header(
        None, alias=IDEMPOTENCY_HEADER, description=KEY_DESCRIPTION, pattern=KEY_PATTERN
    ),
) -> tuple[int, Any]:
    """Saves an immutable version (201, `created: true`), by default the next patch version; content
    identical to the latest version creates nothing (200, `created: false`). TypeScript errors answer 422
    with `details: [{line, column, message}]` unless `save_anyway`. Scope `actions:write`. Send
    `Idempotency-Key` so that a retried request cannot create a second version."""
    token = request_token(request)
    action = _action_or_404(token, slug)

    def save() -> tuple[int, dict[str, Any]]:
        latest = action.latest_version()
        draft = VersionDraft(
            body.source,
            body.config_schema if body.config_schema is not None else (latest.config_schema if latest else {}),
            body.compatible_triggers
            if body.compatible_triggers is not None
            else (list(latest.compatible_triggers) if latest else []),
            body.egress_hosts if body.egress_hosts is not None else (list(latest.egress_hosts) if latest else []),
        )
        try:
            outcome = save_action_version(
                action,
                draft,
                bump=body.bump,
                explicit_version=body.version,
                save_anyway=body.save_anyway,
                acting=request_acting(request),
            )
        except InvalidDraft as error:
            raise _draft_errors(error) from error
        except CompileFailed as failed:
            raise _type_errors(failed) from failed
        except NothingChanged as unchanged:
            return 200, {**_version_summary(unchanged.latest), "created": False}
        return 201, {**_version_summary(outcome.version), "created": True}

    return answer_once(request, response, token.tenant, body.model_dump(), save)


def _version_or_404(token: ApiToken, slug: str, label: str) -> ActionVersion:
    version = (
        ActionVersion.objects.select_related("action", "author")
        .filter(action__tenant=token.tenant, action__slug=slug, version=label)
        .first()
    )
    if version is None:
        raise ApiError(404, "not_found", f"No version {label!r} of action {slug!r} in this tenant.")
    return version


@router.get(
    "/{slug}/versions/{version}",
    response=responses({200: VersionDetail}, 403, 404, 422),
    summary="One version, source included",
    **scope_required("actions:read"),
)
def get_version(request: HttpRequest, slug: ActionSlug, version: VersionLabel) -> dict[str, Any]:
    """A version with its TypeScript source and config schema. Scope `actions:read`."""
    token = request_token(request)
    found = _version_or_404(token, slug, version)
    return {**_version_summary(found), "source": found.source, "config_schema": found.config_schema}


@router.post(
    "/{slug}/versions/{version}/publish",
    response=responses({200: VersionSummary}, 403, 404, 422),
    summary="Publish a version",
    **scope_required("actions:publish"),
)
def publish(request: HttpRequest, slug: ActionSlug, version: VersionLabel) -> dict[str, Any]:
    """Marks the version published so flows can pin it; publishing twice changes nothing. A version saved
    with TypeScript errors cannot be published (422). Scope `actions:publish`."""
    token = request_token(request)
    found = _version_or_404(token, slug, version)
    try:
        published = publish_version(found, acting=request_acting(request))
    except InvalidDraft as error:
        raise _draft_errors(error) from error
    return _version_summary(published)


@router.post(
    "/{slug}/versions/{version}/test",
    response=responses({200: TestOutcome}, 403, 404, 422),
    summary="Run a version with an input",
    **scope_required("runtime:execute"),
)
def test_version(request: HttpRequest, slug: ActionSlug, version: VersionLabel, body: TestRun) -> dict[str, Any]:
    """Runs the version in the sandbox, as the editor's test harness does, with `input` merged over
    sample data and `config` checked against the version's config schema (422 when invalid). The
    action's own failure is not an error answer: it is reported in `error`. Scope `runtime:execute`."""
    token = request_token(request)
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
