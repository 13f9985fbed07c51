"""`POST /api/v1/actions/{slug}/rollout`: one custom action rolled out to the token's tenant in one
transaction (flows_app.rollout), or a dry run that answers the plan. The rollout client
(actions_console_cli) calls it once per tenant."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Router, Schema
from pydantic import ConfigDict

from actions_app.versioning import CompileFailed, InvalidDraft, VersionDraft
from core.api_errors import ApiError
from core.api_types import JsonObject, Text
from flows_app.rollout import InvalidPins, PinTarget, RolloutRequest, roll_out_action
from flows_app.services import StaleRevision
from tenants.api_auth import request_acting
from tenants.api_docs import responses, scope_required
from tenants.idempotency import IDEMPOTENCY_HEADER, KEY_DESCRIPTION, KEY_PATTERN, answer_once
from tenants.models import ApiToken

router = Router(tags=["actions"])

SAMPLE_SOURCE = """export async function execute(input: ActionInput): Promise<ActionResult> {
  if (input.context.risk.score > input.context.config.threshold) return { kind: "block", reason: "Too risky" };
  return { kind: "continue" };
}
"""
SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"threshold": {"type": "integer"}},
    "required": ["threshold"],
}


class PinIn(Schema):
    flow: Text = Field(description="Flow slug, e.g. `login`.")
    trigger: Text = Field(description="A slot of that flow, e.g. `login.post-auth`.")


class RolloutIn(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Risk gate",
                    "compatible_triggers": ["login.post-auth"],
                    "config_schema": SAMPLE_SCHEMA,
                    "source": SAMPLE_SOURCE,
                    "publish": True,
                    "pin": [{"flow": "login", "trigger": "login.post-auth"}],
                    "attach_config": {"threshold": 80},
                    "dry_run": True,
                }
            ]
        }
    )

    name: Text = Field(description="Used when the action is created; an existing action keeps its name.")
    compatible_triggers: list[Text]
    config_schema: JsonObject = Field(default_factory=dict)
    source: Text
    publish: bool = False
    pin: list[PinIn] = Field(
        default_factory=list,
        description="Slots whose bindings of this action move to the new version (attached at the end where "
        "the action is not in the slot yet). Needs a published version: pass `publish` or publish it first.",
    )
    attach_config: JsonObject = Field(
        default_factory=dict, description="Config of a binding that a pin attaches; existing bindings keep theirs."
    )
    bump: Literal["patch", "minor", "major"] = "patch"
    version: Text | None = Field(None, description="An explicit higher version instead of a bump.")
    dry_run: bool = Field(False, description="Answer what would happen without writing anything.")
    expected_flow_revisions: dict[Text, int] = Field(
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "action": "risk-gate",
                    "dry_run": False,
                    "change": "new_version",
                    "version": "0.1.1",
                    "previous_version": "0.1.0",
                    "status": "published",
                    "published_now": True,
                    "bindings": [
                        {
                            "flow": "login",
                            "trigger": "login.post-auth",
                            "position": 0,
                            "change": "updated",
                            "from_version": "0.1.0",
                            "to_version": "0.1.1",
                        }
                    ],
                    "flow_revisions": {"login": 8},
                    "changed_anything": True,
                }
            ]
        }
    )

    action: str
    dry_run: bool
    change: Literal["created", "new_version", "unchanged"]
    version: str = Field(description="The version created, or the latest one when nothing changed.")
    previous_version: str | None
    status: str = Field(description="The version's status after the rollout: `draft` or `published`.")
    published_now: bool
    bindings: list[BindingChangeOut]
    flow_revisions: dict[str, int] = Field(description="Each pinned flow's current revision after the rollout.")
    changed_anything: bool


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
            {"required_scope": missing[0], "missing_scopes": missing, "required_scopes": needed},
        )
    return token


@router.post(
    "/{slug}/rollout",
    response=responses({200: RolloutOut}, 403, 412, 422),
    summary="Create or version a custom action, publish it and pin it in flows, in one transaction",
    # actions:write is checked with the token, before the body is read; publish and pin add theirs.
    **scope_required("actions:write"),
)
def roll_out(
    request: HttpRequest,
    slug: Text,
    body: RolloutIn,
    response: HttpResponse,
    idempotency_key: str | None = Header(
        None, alias=IDEMPOTENCY_HEADER, description=KEY_DESCRIPTION, pattern=KEY_PATTERN
    ),
) -> tuple[int, Any]:
    """All or nothing: creates the action (0.1.0) or saves a new version (none when the content equals
    the latest), publishes it if asked, and moves the action's bindings in each pinned slot to it,
    re-validating their config against the new schema. When any step is refused (TypeScript errors
    with `line`/`column`, a binding config the new schema refuses, a stale flow) nothing is written.
    `dry_run` answers the same document without writing. Scope `actions:write`, plus `actions:publish`
    with `publish` and `flows:write` with `pin`; a 403 names each missing one. Repeating a rollout
    changes nothing; send `Idempotency-Key` so a retry gets the first answer back."""
    token = _require_scopes(request, body)
    if body.dry_run:
        return 200, _roll_out(request, token, slug, body)
    return answer_once(
        request, response, token.tenant, body.dict(), lambda: (200, _roll_out(request, token, slug, body))
    )


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
        result = roll_out_action(token.tenant, rollout, dry_run=body.dry_run, acting=request_acting(request))
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
