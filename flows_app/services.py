"""Writes on flows."""

from __future__ import annotations

from django.db import transaction

from flows_app.models import Flow, FlowRevision
from flows_app.triggers import FLOW_KINDS
from tenants.models import Tenant
from tenants.permissions import grant_tenant_roles

SYSTEM_FLOW_NAMES = {
    "login": "Login",
    "registration": "Registration",
    "password-reset": "Password reset",
    "token-refresh": "Token refresh",
}


def ensure_system_flows(tenant: Tenant) -> list[Flow]:
    """The tenant's one flow per kind (slug = kind), each starting at an empty revision 1."""
    created = []
    with transaction.atomic():
        for kind in FLOW_KINDS:
            flow, was_created = Flow.objects.get_or_create(
                tenant=tenant,
                slug=kind,
                defaults={"name": SYSTEM_FLOW_NAMES[kind], "kind": kind, "is_system": True},
            )
            if was_created:
                revision = FlowRevision.objects.create(flow=flow, number=1, comment="Created with the tenant")
                flow.current_revision = revision
                flow.save(update_fields=["current_revision"])
                created.append(flow)
        grant_tenant_roles(tenant, created)
    return created
