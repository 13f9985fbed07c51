"""Flows endpoints of the management API (contract §9)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Path, Query, Router, Schema
from pydantic import BaseModel, ConfigDict

from actions_app.models import ActionVersion, VersionStatus, newer_published_for
from actions_app.triggers import FLOW_SLOTS
from core.api_errors import ApiError
from core.api_paging import (
    CURSOR_DESCRIPTION,
    DEFAULT_LIMIT,
    LIMIT_DESCRIPTION,
    decode_cursor,
    encode_cursor,
    page_size,
)
from core.api_types import IpAddress, JsonObject, RiskScore, Text
from core.http import parse_count
from flows_app.deleting import CannotDelete, delete_flow
from flows_app.engine import RunRefused, RunRequest, run_flow
from flows_app.models import Binding, Flow
from flows_app.prepared import flow_for_run
from flows_app.services import BindingSpec, InvalidBindings, StaleRevision, binding_snapshot, save_flow_slots
from tenants.api_auth import request_acting, request_token
from tenants.api_docs import responses, scope_required
from tenants.models import ApiToken

router = Router(tags=["flows"])

FlowSlug = Annotated[Text, Path(description="The flow's slug.", examples=["login"])]
TriggerSlot = Annotated[Text, Path(description="A trigger slot of the flow's kind.", examples=["login.post-auth"])]

IF_MATCH_DESCRIPTION = (
    "The revision the change is based on (the flow's `revision` or `ETag`). Required: "
    "a missing one is a 428, a stale one a 412."
)
SAMPLE_BINDING = {
    "action": "block-by-risk-score",
    "version": "1.0.0",
    "config": {"threshold": 80},
    "enabled": True,
    "on_error": "block",
    "timeout_ms": 1000,
}


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class BindingOut(Schema):
    action: str
    version: str
    config: dict[str, Any]
    enabled: bool
    on_error: str
    timeout_ms: int
    position: int
    newer_version_available: str | None = Field(None, description="The latest published version, if newer.")


class FlowOut(Schema):
    model_config = _examples(
        {
            "slug": "login",
            "name": "Login",
            "kind": "login",
            "enabled": True,
            "revision": 2,
            "slots": {
                "login.pre-credential-check": [],
                "login.post-auth": [{**SAMPLE_BINDING, "position": 0, "newer_version_available": None}],
                "login.pre-token": [],
                "login.post-login": [],
            },
        }
    )

    slug: str
    name: str
    kind: str
    enabled: bool
    revision: int = Field(description="The current revision; send it as `If-Match` to change a slot.")
    slots: dict[str, list[BindingOut]] = Field(description="Every slot of the flow's kind, in order: its bindings.")


class FlowList(Schema):
    items: list[FlowOut]
    next: str | None = Field(description="Cursor of the next page, or null on the last page.")


class BindingIn(Schema):
    action: Text = Field(description="Action slug.")
    version: Text = Field(description="A published version of the action.")
    config: JsonObject = Field(default_factory=dict, description="Valid against the version's config schema.")
    enabled: bool = True
    on_error: Literal["block", "continue"] = "block"
    timeout_ms: int = Field(1000, ge=50, le=5000)


class SlotIn(Schema):
    model_config = _examples({"bindings": [SAMPLE_BINDING]})

    bindings: list[BindingIn] = Field(description="The slot's whole new list, in run order; [] empties it.")


# The run endpoint's models are plain pydantic: ninja's Schema validates through a getter meant for
# ORM objects, which on every sign-in cost more than the rest of parsing the body.
class RunUser(BaseModel):
    id: Text
    email: Text
    email_verified: bool = False
    name: Text | None = None
    groups: list[Text] = Field(default_factory=list)
    app_metadata: JsonObject = Field(default_factory=dict)


class RunHttpRequest(BaseModel):
    ip: IpAddress = Field(description="The client's IPv4 or IPv6 address.")
    user_agent: Text = ""
    hostname: Text = ""
    country: Text | None = None


class RunRisk(BaseModel):
    score: RiskScore = Field(0, description="0–100, a JSON number.")


class RunContext(BaseModel):
    risk: RunRisk = RunRisk(score=0)


class RunIn(BaseModel):
    model_config = _examples(
        {
            "trigger": "login.post-auth",
            "transaction_id": "txn_01HZX3",
            "user": {"id": "user_1", "email": "jane@example.com", "email_verified": True, "groups": ["staff"]},
            "request": {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0", "hostname": "login.example.com"},
            "context": {"risk": {"score": 12}},
        }
    )

    trigger: Text = Field(description="A slot of the flow's kind.")
    transaction_id: Text | None = Field(
        None, max_length=64, description="Ties the triggers of one sign-in to one flow revision; new when left out."
    )
    user: RunUser
    request: RunHttpRequest
    context: RunContext = RunContext()


class ExecutionOut(BaseModel):
    action: str
    version: str
    outcome: str
    duration_ms: float
    error: dict[str, str] | None


class RunOut(BaseModel):
    model_config = _examples(
        {
            "transaction_id": "txn_01HZX3",
            "flow_revision": 2,
            "outcome": {"kind": "continue", "claims": {}, "state": {}},
            "executions": [
                {
                    "action": "block-by-risk-score",
                    "version": "1.0.0",
                    "outcome": "continue",
                    "duration_ms": 0.41,
                    "error": None,
                }
            ],
        }
    )

    transaction_id: str
    flow_revision: int
    outcome: dict[str, Any] = Field(description="`{kind, reason?, url?, claims, state}`: what the sign-in does next.")
    executions: list[ExecutionOut]


def flow_or_404(token: ApiToken, slug: str) -> Flow:
    """The token's tenant's flow with its current revision (one query, as on the run path)."""
    flow = flow_for_run(token.tenant, slug)
    if flow is None:
        raise ApiError(404, "not_found", f"No flow {slug!r} in this tenant.")
    return flow


def flow_document(flow: Flow) -> dict[str, Any]:
    return flow_documents([flow])[0]


def flow_documents(flows: list[Flow]) -> list[dict[str, Any]]:
    """Each flow with its current revision's slots, in two queries however many flows."""
    bindings = list(
        Binding.objects.filter(revision__in=[flow.current_revision_id for flow in flows])
        .select_related("action", "pinned_version")
        .order_by("trigger", "position")
    )
    published = _published_newest_first({b.action_id for b in bindings})
    by_revision: dict[int, list[Binding]] = {}
    for binding in bindings:
        by_revision.setdefault(binding.revision_id, []).append(binding)
    documents = []
    for flow in flows:
        assert flow.current_revision is not None
        slots: dict[str, list[dict[str, Any]]] = {trigger: [] for trigger in FLOW_SLOTS[flow.kind]}
        for binding in by_revision.get(flow.current_revision.pk, []):
            newer = newer_published_for(published.get(binding.action_id, []), binding.pinned_version, binding.trigger)
            slots[binding.trigger].append(
                {**binding_snapshot(binding), "newer_version_available": newer.version if newer else None}
            )
        documents.append(
            {
                "slug": flow.slug,
                "name": flow.name,
                "kind": flow.kind,
                "enabled": flow.enabled,
                "revision": flow.current_revision.number,
                "slots": slots,
            }
        )
    return documents


def _published_newest_first(action_ids: set[int]) -> dict[int, list[ActionVersion]]:
    """Each action's published versions, newest first (what newer_published_for reads)."""
    versions: dict[int, list[ActionVersion]] = {}
    published = ActionVersion.objects.filter(action_id__in=action_ids, status=VersionStatus.PUBLISHED)
    fields = ("action_id", "version", "major", "minor", "patch", "status", "compatible_triggers")
    for version in published.only(*fields).order_by("-major", "-minor", "-patch"):
        versions.setdefault(version.action_id, []).append(version)
    return versions


@router.get(
    "",
    response=responses({200: FlowList}, 400, 403, 422),
    summary="The tenant's flows with their current revision",
    **scope_required("flows:read"),
)
def list_flows(
    request: HttpRequest,
    limit: int = Query(DEFAULT_LIMIT, description=LIMIT_DESCRIPTION),
    cursor: Text = Query("", description=CURSOR_DESCRIPTION),  # noqa: B008
) -> dict[str, Any]:
    """Every flow of the token's tenant by slug, each with its current revision and slots. Scope `flows:read`."""
    token = request_token(request)
    size = page_size(limit)
    flows = Flow.objects.select_related("tenant", "current_revision").filter(tenant=token.tenant).order_by("slug")
    if cursor:
        (after,) = decode_cursor("flows", cursor, 1)
        flows = flows.filter(slug__gt=after)
    page = list(flows[: size + 1])
    more = len(page) > size
    page = page[:size]
    return {
        "items": flow_documents(page),
        "next": encode_cursor("flows", [page[-1].slug]) if more else None,
    }


@router.get(
    "/{slug}",
    response=responses({200: FlowOut}, 403, 404, 422),
    summary="One flow: revision and slots",
    **scope_required("flows:read"),
)
def get_flow(request: HttpRequest, slug: FlowSlug, response: HttpResponse) -> dict[str, Any]:
    """The flow with its current revision (also as `ETag`) and every slot's bindings. Scope `flows:read`."""
    token = request_token(request)
    document = flow_document(flow_or_404(token, slug))
    response["ETag"] = f'"{document["revision"]}"'
    return document


@router.delete(
    "/{slug}",
    response=responses({204: None}, 403, 404, 409, 422),
    summary="Delete a flow that is not a system flow",
    **scope_required("flows:write"),
)
def delete_flow_endpoint(request: HttpRequest, slug: FlowSlug) -> tuple[int, None]:
    """Deletes a flow (contract §14); a tenant's built-in flow of each kind answers 409. Its
    transactions end and later runs of it answer 404; its revisions, executions and audit events
    stay readable, and the slug can be used again. Scope `flows:write`."""
    token = request_token(request)
    flow = flow_or_404(token, slug)
    try:
        delete_flow(flow, acting=request_acting(request))
    except CannotDelete as refused:
        raise ApiError(409, "cannot_delete", str(refused)) from refused
    return 204, None


def stale_revision_error(stale: StaleRevision) -> ApiError:
    """The 412 of every write that names the revision it is based on."""
    return ApiError(
        412,
        "stale_revision",
        f"The flow is at revision {stale.current.number}, not {stale.expected}; GET it and apply your change again.",
        {"current_revision": stale.current.number},
    )


def expected_revision_from(if_match: str | None) -> int:
    """The revision number an `If-Match` header names: 428 when missing, 400 when not a number."""
    header = (if_match or "").strip()
    if not header:
        message = "Send If-Match with the revision you edited (GET the flow first)."
        raise ApiError(428, "if_match_required", message, [{"field": "If-Match", "message": message}])
    revision = parse_count(header.removeprefix("W/").strip('"'), max_digits=9)
    if revision is None:
        message = f"If-Match must be a revision number, not {header!r}."
        raise ApiError(400, "bad_if_match", message, [{"field": "If-Match", "message": message}])
    return revision


@router.put(
    "/{slug}/slots/{trigger}",
    response=responses({200: FlowOut}, 400, 403, 404, 412, 422, 428),
    summary="Replace one slot's bindings; creates a new revision (If-Match: current revision)",
    **scope_required("flows:write"),
)
def put_slot(
    request: HttpRequest,
    slug: FlowSlug,
    trigger: TriggerSlot,
    body: SlotIn,
    response: HttpResponse,
    if_match: str | None = Header(
        None,
        alias="If-Match",
        examples=["1"],
        description=IF_MATCH_DESCRIPTION,
    ),
) -> dict[str, Any]:
    """Replaces the slot's bindings and makes the result the flow's new current revision (200, new
    `ETag`). 412 when `If-Match` is not the current revision; 422 when the trigger is not a slot of
    the flow, a version is not published, or a config is invalid (`details` names each binding's
    field, e.g. `login.post-auth.0.config.threshold`). Scope `flows:write`."""
    token = request_token(request)
    flow = flow_or_404(token, slug)
    expected = expected_revision_from(if_match)
    if trigger not in FLOW_SLOTS[flow.kind]:
        raise ApiError(
            422, "incompatible_trigger", f"{trigger!r} is not a slot of the {flow.kind} flow.", FLOW_SLOTS[flow.kind]
        )
    specs = [BindingSpec(**b.dict()) for b in body.bindings]
    try:
        save_flow_slots(flow, {trigger: specs}, expected_revision=expected, acting=request_acting(request))
    except StaleRevision as stale:
        raise stale_revision_error(stale) from stale
    except InvalidBindings as invalid:
        details = [{"field": path, "message": m} for path, messages in invalid.errors.items() for m in messages]
        message = "One or more bindings are invalid; nothing was saved."
        raise ApiError(422, "invalid_bindings", message, details) from invalid
    document = flow_document(flow_or_404(token, slug))
    response["ETag"] = f'"{document["revision"]}"'
    return document


@router.post(
    "/{slug}/run",
    response=responses({200: RunOut}, 403, 404, 422),
    summary="Run one trigger of the flow for a transaction",
    **scope_required("runtime:execute"),
)
def run(request: HttpRequest, slug: FlowSlug, body: RunIn) -> dict[str, Any]:
    """Runs the bindings of one trigger slot, in order, for a sign-in transaction and answers what happens
    next (`outcome`) with each binding's execution. The first trigger of a transaction fixes the flow
    revision for the rest of it. 422 when the trigger is not a slot of the flow. Scope `runtime:execute`."""
    token = request_token(request)
    flow = flow_or_404(token, slug)
    try:
        result = run_flow(
            flow,
            RunRequest(
                trigger=body.trigger,
                user=body.user.model_dump(exclude_none=True),
                request=body.request.model_dump(exclude_none=True),
                risk_score=body.context.risk.score,
                transaction_id=body.transaction_id,
            ),
            acting=request_acting(request),
        )
    except RunRefused as refused:
        raise ApiError(422, "incompatible_trigger", str(refused)) from refused
    return {
        "transaction_id": result.transaction_id,
        "flow_revision": result.flow_revision,
        "outcome": result.outcome,
        "executions": [
            {
                "action": e.action,
                "version": e.version,
                "outcome": e.outcome,
                "duration_ms": e.duration_ms,
                "error": e.error,
            }
            for e in result.executions
        ],
    }
