"""Founding a tenant: the tenant row and its role groups (tenants), its system flows (flows_app)
and the platform's template actions (actions_app), in one transaction."""

from __future__ import annotations

from django.db import transaction

from actions_app.services import sync_platform_templates
from flows_app.services import ensure_system_flows
from tenants.acting import backdated
from tenants.models import Tenant
from tenants.permissions import ensure_role_groups


def create_tenant(*, slug: str, name: str) -> Tenant:
    """Create a tenant with its role groups, its four system flows and the platform templates.
    No audit event records it (a tenant's trail starts with its first member), so it takes no
    acting context; inside recording_history_at the rows take the time being imported."""
    with transaction.atomic():
        tenant = Tenant(slug=slug, name=name, **backdated())
        tenant.full_clean()
        tenant.save()
        ensure_role_groups(tenant)
        ensure_system_flows(tenant)
        sync_platform_templates(tenant)
    return tenant
