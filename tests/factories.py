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


# ---- Requests for the hostile-input tests -------------------------------------------------

CONTINUING_ACTION = """export async function execute(input: ActionInput): Promise<ActionResult> {
  return { kind: "continue" };
}
"""


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
