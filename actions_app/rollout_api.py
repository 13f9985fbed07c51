"""`POST /api/v1/actions/{slug}/rollout`: one custom action rolled out to the token's tenant in one
transaction (actions_app.rollout), or a dry run that answers the plan. The rollout client
(actions_console_cli) calls it once per tenant."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any, Literal

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from actions_app.rollout import InvalidPins, PinTarget, RolloutRequest, roll_out_action
from actions_app.versioning import CompileFailed, InvalidDraft, VersionDraft
from audit_app.services import Actor, RequestMeta
from flows_app.services import StaleRevision
from tenants.api_auth import ApiError
from tenants.models import ApiToken

router = Router(tags=["actions"])

# A retried request with the same key within this time gets the first answer back.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY_LENGTH = 200


class PinIn(Schema):
    flow: str = Field(description="Flow slug, e.g. login")
    trigger: str = Field(description="A slot of that flow, e.g. login.post-auth")


class RolloutIn(Schema):
    name: str = Field(description="Used when the action is created; an existing action keeps its name.")
    compatible_triggers: list[str]
    config_schema: dict[str, Any] = Field(default_factory=dict)
    source: str
    publish: bool = False
    pin: list[PinIn] = Field(
        default_factory=list,
        description="Slots whose bindings of this action move to the new version (attached at the end where "
        "the action is not in the slot yet). Needs a published version: pass publish or publish it first.",
    )
    attach_config: dict[str, Any] = Field(
        default_factory=dict, description="Config of a binding that a pin attaches; existing bindings keep theirs."
    )
    bump: Literal["patch", "minor", "major"] = "patch"
    version: str | None = Field(None, description="An explicit higher version instead of a bump.")
    dry_run: bool = False
    expected_flow_revisions: dict[str, int] = Field(
        default_factory=dict, description="Refuse with 412 if a pinned flow is no longer at this revision."
    )


class BindingChangeOut(Schema):
    flow: str
    trigger: str
    position: int
    change: Literal["updated", "attached", "unchanged"]
    from_version: str | None
    to_version: str


class RolloutOut(Schema):
    action: str
    dry_run: bool
    change: Literal["created", "new_version", "unchanged"]
    version: str = Field(description="The version created, or the latest one when nothing changed.")
    previous_version: str | None
    status: str = Field(description="The version's status after the rollout: draft or published.")
    published_now: bool
    bindings: list[BindingChangeOut]
    flow_revisions: dict[str, int] = Field(description="Each pinned flow's current revision after the rollout.")
    changed_anything: bool


class ErrorBody(Schema):
    code: str
    message: str
    details: Any


class ErrorOut(Schema):
    error: ErrorBody


def _require_scopes(request: HttpRequest, body: RolloutIn) -> ApiToken:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    needed = ["actions:write"]
    if body.publish:
        needed.append("actions:publish")
    if body.pin:
        needed.append("flows:write")
    missing = [scope for scope in needed if not token.has_scope(scope)]
    if missing:
        raise ApiError(
            403,
            "missing_scope",
            f"This token lacks the scope{'s' if len(missing) > 1 else ''} {', '.join(missing)} this rollout needs.",
            {"required_scopes": needed, "missing_scopes": missing},
        )
    return token


def _replay_key(token: ApiToken, request: HttpRequest) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ApiError(
            400, "bad_idempotency_key", f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters."
        )
    return f"rollout-idempotency:{token.tenant_id}:{hashlib.sha256(key.encode()).hexdigest()}"


def _fingerprint(slug: str, body: RolloutIn) -> str:
    canonical = json.dumps({"slug": slug, **body.dict()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "/{slug}/rollout",
    response={200: RolloutOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 412: ErrorOut, 422: ErrorOut},
    summary="Create or version a custom action, publish it and pin it in flows, all in one transaction",
    description="All or nothing: when any step is refused (type errors, a binding config the new schema "
    "refuses, a stale flow) nothing is written. `dry_run` answers the same document without writing. "
    "Identical content saves no version, so repeating a rollout changes nothing; a retry with the same "
    "`Idempotency-Key` gets the first answer back (header `Idempotent-Replayed: true`). Scopes: "
    "actions:write, plus actions:publish to publish and flows:write to pin.",
)
def roll_out(request: HttpRequest, slug: str, body: RolloutIn, response: HttpResponse) -> dict[str, Any]:
    token = _require_scopes(request, body)
    replay_key = None if body.dry_run else _replay_key(token, request)
    fingerprint = _fingerprint(slug, body)
    if replay_key:
        stored = cache.get(replay_key)
        if stored is not None:
            if stored["fingerprint"] != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different rollout; use a new key for new content.",
                )
            response["Idempotent-Replayed"] = "true"
            replayed: dict[str, Any] = stored["document"]
            return replayed
    document = _roll_out(request, token, slug, body)
    if replay_key:
        cache.set(replay_key, {"fingerprint": fingerprint, "document": document}, IDEMPOTENCY_TTL_SECONDS)
    return document


def _roll_out(request: HttpRequest, token: ApiToken, slug: str, body: RolloutIn) -> dict[str, Any]:
    rollout = RolloutRequest(
        slug=slug,
        name=body.name,
        draft=VersionDraft(body.source, body.config_schema, body.compatible_triggers),
        publish=body.publish,
        pins=tuple(PinTarget(pin.flow, pin.trigger) for pin in body.pin),
        attach_config=body.attach_config,
        bump=body.bump,
        explicit_version=body.version,
        expected_flow_revisions=body.expected_flow_revisions,
    )
    try:
        result = roll_out_action(
            token.tenant,
            rollout,
            actor=Actor.for_token(token),
            meta=RequestMeta.from_request(request),
            dry_run=body.dry_run,
        )
    except InvalidDraft as error:
        details = [{"field": name, "message": m} for name, messages in error.errors.items() for m in messages]
        raise ApiError(422, "invalid_action", "The action is invalid; nothing was written.", details) from error
    except CompileFailed as failed:
        diagnostics = [
            {"line": d.line, "column": d.column, "message": d.message, "code": d.code} for d in failed.diagnostics
        ]
        message = f"The TypeScript has {len(diagnostics)} error(s); nothing was written."
        raise ApiError(422, "type_errors", message, diagnostics) from failed
    except InvalidPins as invalid:
        details = [{"field": path, "message": m} for path, messages in invalid.errors.items() for m in messages]
        message = "The version cannot be pinned where asked; nothing was written."
        raise ApiError(422, "invalid_pins", message, details) from invalid
    except StaleRevision as stale:
        raise ApiError(
            412,
            "stale_revision",
            f"The flow {stale.current.flow.slug!r} is at revision {stale.current.number}, not {stale.expected}; "
            "nothing was written.",
            {"flow": stale.current.flow.slug, "current_revision": stale.current.number},
        ) from stale
    return {
        "action": result.slug,
        "dry_run": result.dry_run,
        "change": result.change,
        "version": result.version,
        "previous_version": result.previous_version,
        "status": result.status,
        "published_now": result.published_now,
        "bindings": [asdict(change) for change in result.bindings],
        "flow_revisions": result.flow_revisions,
        "changed_anything": result.changed_anything,
    }
