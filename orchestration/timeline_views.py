from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from flows_app.models import Flow
from orchestration.timeline import BUCKET_MINUTES, MARKER_STYLES, OUTCOMES, TimelineWindow, build_timeline
from tenants.access import TenantAccess, tenant_view
from tenants.pages import render_tenant_page


@tenant_view
@require_GET
def timeline(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    window = TimelineWindow.from_params(request.GET, now=timezone.now())
    # Like the audit log: only members read the history (a single-object grant is not enough).
    readable_tenant = access.tenant if access.membership is not None else None
    flows = Flow.objects.filter(tenant=access.tenant).order_by("slug").values_list("slug", flat=True)
    context = {
        "window": window,
        "timeline": build_timeline(readable_tenant, window),
        "outcomes": OUTCOMES,
        "marker_styles": MARKER_STYLES,
        "bucket_choices": BUCKET_MINUTES,
        "flows": list(flows) if readable_tenant else [],
    }
    return render_tenant_page(request, access, "audit_app/timeline.html", context)
