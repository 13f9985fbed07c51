"""Builders shared by tests and benchmarks."""

from __future__ import annotations

import json
from typing import Any

from actions_app.models import Action, ActionKind, ActionVersion, content_checksum
from actions_app.sample_inputs import sample_input
from tenants.permissions import grant_tenant_roles


def bulk_custom_actions(tenant: Any, count: int, prefix: str = "bulk") -> list[Action]:
    """`count` custom actions with one 0.1.0 version each, visible to the tenant's roles."""
    Action.objects.bulk_create(
        Action(tenant=tenant, slug=f"{prefix}-{i:05d}", name=f"{prefix.title()} action {i:05d}", kind=ActionKind.CUSTOM)
        for i in range(count)
    )
    actions = list(Action.objects.filter(tenant=tenant, slug__startswith=f"{prefix}-"))
    ActionVersion.objects.bulk_create(
        ActionVersion(
            action=action,
            **ActionVersion.semver_fields("0.1.0"),
            compatible_triggers=["login.post-auth"],
            checksum=content_checksum("", {}, ["login.post-auth"]),
        )
        for action in actions
    )
    grant_tenant_roles(tenant, actions)
    return actions


def execution_rows(action: Action, flow: Any, count: int, start: Any, **fields: Any) -> list[Any]:
    """`count` recorded executions of `action` in `flow`, one a second from `start` onwards, each
    its own transaction (`tx-00000`, ...), inserted in one statement; `fields` override any column."""
    import uuid
    from datetime import timedelta

    from flows_app.models import ActionExecution

    return ActionExecution.objects.bulk_create(
        ActionExecution(
            **{
                "tenant": action.tenant,
                "flow": flow,
                "revision_number": 1,
                "transaction_id": f"tx-{i:05d}",
                "trigger": "login.post-auth",
                "binding_key": uuid.UUID(int=i),
                "action": action,
                "action_version": "0.1.0",
                "position": 0,
                "outcome": "continue",
                "duration_ms": 1.0,
                "occurred_at": start + timedelta(seconds=i),
                **fields,
            }
        )
        for i in range(count)
    )


def region(html: str, element_id: str, closing: str) -> str:
    """The part of a page from the element with id `element_id` up to the next `closing` tag."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index(closing, start)]


# ---- Requests for the hostile-input tests -------------------------------------------------

CONTINUING_ACTION = """export async function execute(input: ActionInput): Promise<ActionResult> {
  return { kind: "continue" };
}
"""


def web(user: Any) -> Any:
    """A test client signed in as `user` (a console session, as a browser would hold)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def send_json(client: Any, method: str, url: str, token: str, body: Any, **headers: str) -> Any:
    send = getattr(client, method)
    return send(url, data=json.dumps(body), content_type="application/json", headers={**bearer(token), **headers})


def nested(depth: int) -> dict[str, Any]:
    """A JSON object `depth` objects deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def error_fields(response: Any) -> dict[str, str]:
    return {detail["field"]: detail["message"] for detail in response.json()["error"]["details"]}


def editor_post(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Hostile",
        "slug": "",
        "source": CONTINUING_ACTION,
        "compatible_triggers": ["login.post-auth"],
        "config_schema": json.dumps({"type": "object", "properties": {}}),
        "bump": "patch",
        "version": "",
        "base_version": "",
        "harness_input": json.dumps(sample_input("login.post-auth")),
        "harness_target": "draft",
        **overrides,
    }


def acting_as(user: Any, tenant: Any = None, *, role: Any = None) -> Any:
    """The acting context of `user` as an operator outside a request: with `tenant`, holding the
    role they have there; otherwise `role` (None: no role to check, as the platform's own writes)."""
    from tenants.acting import Acting
    from tenants.models import Membership

    if tenant is not None:
        membership = Membership.objects.filter(tenant=tenant, user=user).first()
        role = membership.role_enum if membership else None
    return Acting.as_operator(user, role)
