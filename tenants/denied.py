"""The console's 403 page (Django's handler403), which needs the tenant's navigation."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tenants.access import tenant_access


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403: a refusal inside a tenant keeps that tenant's navigation and the operator's
    role in the header, so they go on from where they were rather than from the console's home."""
    message = str(exception)
    if request.path.startswith("/api/"):
        error = {"code": "forbidden", "message": message or "Not allowed.", "details": []}
        return JsonResponse({"error": error}, status=403)
    context: dict[str, Any] = {"exception": message}
    match = request.resolver_match
    tenant_slug = match.kwargs.get("tenant_slug") if match else None
    if tenant_slug:
        try:
            access = tenant_access(request, tenant_slug)
        except Http404:
            pass  # not theirs after all: the page without a tenant's navigation
        else:
            context.update(tenant=access.tenant, access=access)
    return render(request, "403.html", context, status=403)
