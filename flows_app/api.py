"""Flows endpoints of the management API (contract §9)."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from actions_app.models import VersionStatus
from audit_app.services import Actor, RequestMeta
from flows_app.engine import RunRefused, RunRequest, run_flow
from flows_app.models import Binding, Flow
from flows_app.services import BindingSpec, InvalidBindings, StaleRevision, binding_snapshot, save_flow_slots
from flows_app.triggers import FLOW_SLOTS
from tenants.api_auth import ApiError, require_scope
from tenants.models import ApiToken

router = Router(tags=["flows"])


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
    slug: str
    name: str
    kind: str
    enabled: bool
    revision: int
    slots: dict[str, list[BindingOut]]


class FlowList(Schema):
    items: list[FlowOut]


class BindingIn(Schema):
    action: str
    version: str
    config: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    on_error: Literal["block", "continue"] = "block"
    timeout_ms: int = Field(1000, ge=50, le=5000)


class SlotIn(Schema):
    bindings: list[BindingIn]


class RunUser(Schema):
    id: str
    email: str
    email_verified: bool = False
    name: str | None = None
    groups: list[str] = Field(default_factory=list)
    app_metadata: dict[str, Any] = Field(default_factory=dict)


class RunHttpRequest(Schema):
    ip: str
    user_agent: str = ""
    hostname: str = ""
    country: str | None = None


class RunRisk(Schema):
    score: float = Field(0, ge=0, le=100)


class RunContext(Schema):
    risk: RunRisk = RunRisk(score=0)


class RunIn(Schema):
    trigger: str
    transaction_id: str | None = Field(None, max_length=64)
    user: RunUser
    request: RunHttpRequest
    context: RunContext = RunContext()


class ExecutionOut(Schema):
    action: str
    version: str
    outcome: str
    duration_ms: float
    error: dict[str, str] | None


class RunOut(Schema):
    transaction_id: str
    flow_revision: int
    outcome: dict[str, Any]
    executions: list[ExecutionOut]


def _flow_or_404(token: ApiToken, slug: str) -> Flow:
    try:
        flow = Flow.objects.select_related("current_revision").get(tenant=token.tenant, slug=slug)
    except Flow.DoesNotExist:
        raise ApiError(404, "not_found", f"No flow {slug!r} in this tenant.") from None
    flow.tenant = token.tenant  # already loaded with the token: spares a join on the hot path
    return flow


def flow_document(flow: Flow) -> dict[str, Any]:
    assert flow.current_revision is not None
    bindings = list(
        Binding.objects.filter(revision=flow.current_revision)
        .select_related("action", "pinned_version")
        .order_by("trigger", "position")
    )
    latest_published = _latest_published({b.action_id for b in bindings})
    slots: dict[str, list[dict[str, Any]]] = {trigger: [] for trigger in FLOW_SLOTS[flow.kind]}
    for binding in bindings:
        newest = latest_published.get(binding.action_id)
        snapshot = binding_snapshot(binding)
        slots[binding.trigger].append(
            {
                **snapshot,
                "newer_version_available": newest[1] if newest and newest[0] > _semver_key(binding) else None,
            }
        )
    return {
        "slug": flow.slug,
        "name": flow.name,
        "kind": flow.kind,
        "enabled": flow.enabled,
        "revision": flow.current_revision.number,
        "slots": slots,
    }


def _semver_key(binding: Binding) -> tuple[int, int, int]:
    v = binding.pinned_version
    return (v.major, v.minor, v.patch)


def _latest_published(action_ids: set[int]) -> dict[int, tuple[tuple[int, int, int], str]]:
    from actions_app.models import ActionVersion

    newest: dict[int, tuple[tuple[int, int, int], str]] = {}
    for v in ActionVersion.objects.filter(action_id__in=action_ids, status=VersionStatus.PUBLISHED).only(
        "action_id", "version", "major", "minor", "patch"
    ):
        key = (v.major, v.minor, v.patch)
        if v.action_id not in newest or key > newest[v.action_id][0]:
            newest[v.action_id] = (key, v.version)
    return newest


@router.get("", response=FlowList, summary="The tenant's flows with their current revision")
def list_flows(request: HttpRequest) -> dict[str, Any]:
    token = require_scope(request, "flows:read")
    flows = Flow.objects.select_related("tenant", "current_revision").filter(tenant=token.tenant).order_by("slug")
    return {"items": [flow_document(flow) for flow in flows]}


@router.get("/{slug}", response=FlowOut, summary="One flow: revision and slots")
def get_flow(request: HttpRequest, slug: str, response: HttpResponse) -> dict[str, Any]:
    token = require_scope(request, "flows:read")
    document = flow_document(_flow_or_404(token, slug))
    response["ETag"] = f'"{document["revision"]}"'
    return document


def _expected_revision(request: HttpRequest) -> int:
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise ApiError(428, "if_match_required", "Send If-Match with the revision you edited (GET the flow first).")
    cleaned = header.removeprefix("W/").strip('"')
    if not cleaned.isdigit():
        raise ApiError(400, "bad_if_match", f"If-Match must be a revision number, not {header!r}.")
    return int(cleaned)


@router.put(
    "/{slug}/slots/{trigger}",
    response=FlowOut,
    summary="Replace one slot's bindings; creates a new revision (If-Match: current revision)",
)
def put_slot(request: HttpRequest, slug: str, trigger: str, body: SlotIn, response: HttpResponse) -> dict[str, Any]:
    token = require_scope(request, "flows:write")
    flow = _flow_or_404(token, slug)
    expected = _expected_revision(request)
    if trigger not in FLOW_SLOTS[flow.kind]:
        raise ApiError(
            422, "incompatible_trigger", f"{trigger!r} is not a slot of the {flow.kind} flow.", FLOW_SLOTS[flow.kind]
        )
    specs = [BindingSpec(**b.dict()) for b in body.bindings]
    try:
        save_flow_slots(
            flow,
            {trigger: specs},
            expected_revision=expected,
            actor=Actor.for_token(token),
            meta=RequestMeta.from_request(request),
        )
    except StaleRevision as stale:
        raise ApiError(
            412,
            "stale_revision",
            f"The flow is at revision {stale.current.number}, not {stale.expected}; "
            "GET it and apply your change again.",
            {"current_revision": stale.current.number},
        ) from stale
    except InvalidBindings as invalid:
        details = [{"field": path, "message": m} for path, messages in invalid.errors.items() for m in messages]
        message = "One or more bindings are invalid; nothing was saved."
        raise ApiError(422, "invalid_bindings", message, details) from invalid
    document = flow_document(_flow_or_404(token, slug))
    response["ETag"] = f'"{document["revision"]}"'
    return document


@router.post("/{slug}/run", response=RunOut, summary="Run one trigger of the flow for a transaction")
def run(request: HttpRequest, slug: str, body: RunIn) -> dict[str, Any]:
    token = require_scope(request, "runtime:execute")
    flow = _flow_or_404(token, slug)
    try:
        result = run_flow(
            flow,
            RunRequest(
                trigger=body.trigger,
                user=body.user.dict(exclude_none=True),
                request=body.request.dict(exclude_none=True),
                risk_score=body.context.risk.score,
                transaction_id=body.transaction_id,
            ),
            actor=Actor.for_token(token),
            meta=RequestMeta.from_request(request),
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
