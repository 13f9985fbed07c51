"""Founding a tenant: the tenant row and its role groups (tenants), its system flows (flows_app)
and the platform's template actions (actions_app), in one transaction."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from actions_app.services import sync_platform_templates
from flows_app.services import ensure_system_flows
from tenants.acting import backdated
from tenants.models import Tenant
from tenants.permissions import ensure_role_groups


def create_tenant(*, slug: str, name: str, occurred_at: datetime | None = None) -> Tenant:
    """Create a tenant with its role groups, its four system flows and the platform templates.
    (`occurred_at` backdates the tenant and its flows when importing history.)"""
    with transaction.atomic():
        tenant = Tenant(slug=slug, name=name, **backdated(occurred_at))
        tenant.full_clean()
        tenant.save()
        ensure_role_groups(tenant)
        ensure_system_flows(tenant, occurred_at=occurred_at)
        sync_platform_templates(tenant, occurred_at=occurred_at)
    return tenant
