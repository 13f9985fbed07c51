"""Small builders for flow tests: attach bindings through the real service and run triggers."""

from __future__ import annotations

from typing import Any

from actions_app.models import Action
from actions_app.versioning import VersionDraft, create_custom_action, publish_version
from flows_app.engine import RunRequest, RunResult, run_flow
from flows_app.models import Flow
from flows_app.services import BindingSpec, save_flow_slots
from tenants.acting import Acting

SYSTEM = Acting.platform("tests")


def flow_of(tenant: Any, slug: str = "login") -> Flow:
    return Flow.objects.select_related("tenant", "current_revision").get(tenant=tenant, slug=slug)


def attach(tenant: Any, trigger: str, *specs: BindingSpec, flow_slug: str = "login") -> Flow:
    """Replace `trigger`'s bindings with `specs` as a new revision of the flow."""
    flow = flow_of(tenant, flow_slug)
    assert flow.current_revision is not None
    save_flow_slots(flow, {trigger: list(specs)}, expected_revision=flow.current_revision.number, acting=SYSTEM)
    return flow_of(tenant, flow_slug)


def custom_action(tenant: Any, slug: str, source: str, triggers: list[str], schema: Any = None) -> Action:
    """A custom action with one published version 0.1.0."""
    body = f"export async function execute(input: ActionInput): Promise<ActionResult> {{\n{source}\n}}\n"
    outcome = create_custom_action(
        tenant,
        name=slug,
        slug=slug,
        draft=VersionDraft(body, schema or {"type": "object", "properties": {}}, triggers),
        acting=SYSTEM,
    )
    publish_version(outcome.version, acting=SYSTEM)
    return outcome.version.action


def run(
    tenant: Any,
    trigger: str,
    *,
    email: str = "jane@example.com",
    groups: list[str] | None = None,
    ip: str = "203.0.113.7",
    risk: float = 10,
    transaction_id: str | None = None,
    flow_slug: str = "login",
    user_id: str = "user_1",
) -> RunResult:
    return run_flow(
        flow_of(tenant, flow_slug),
        RunRequest(
            trigger=trigger,
            user={
                "id": user_id,
                "email": email,
                "email_verified": True,
                "groups": groups or [],
                "app_metadata": {"plan": "gold"},
            },
            request={"ip": ip, "user_agent": "pytest", "hostname": "login.example.com"},
            risk_score=risk,
            transaction_id=transaction_id,
        ),
        acting=SYSTEM,
    )
