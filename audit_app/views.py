from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit_app.models import EVENT_TYPES, AuditEvent
from tenants.access import TenantAccess, tenant_view

PAGE_SIZE = 50


@tenant_view
def audit_log(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    # Every role can read the whole tenant's audit history (contract §1: viewer reads everything);
    # an operator with only a single-object grant is not a member and sees none of it.
    events = AuditEvent.objects.for_tenant(access.tenant) if access.membership else AuditEvent.objects.none()
    event_type = request.GET.get("type", "")
    if event_type in EVENT_TYPES:
        events = events.filter(type=event_type)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "access": access,
        "tenant": access.tenant,
        "page": page,
        "event_types": EVENT_TYPES,
        "event_type": event_type if event_type in EVENT_TYPES else "",
    }
    return render(request, "audit_app/audit_log.html", context)
