"""Builders shared by tests and benchmarks."""

from __future__ import annotations

from typing import Any

from actions_app.models import Action, ActionKind, ActionVersion, content_checksum
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
