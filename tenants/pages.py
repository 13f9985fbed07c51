"""Rendering a tenant's pages: every one needs the tenant and the operator's access to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.access import TenantAccess


def render_tenant_page(
    request: HttpRequest,
    access: TenantAccess,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """`template` with `context`, the `tenant` and the operator's `access` (base.html's navigation
    and role read them); with `partial`, only that named partial of it, for an htmx request that
    swaps one region."""
    name = f"{template}#{partial}" if partial else template
    return render(request, name, {**(context or {}), "access": access, "tenant": access.tenant}, status=status)
