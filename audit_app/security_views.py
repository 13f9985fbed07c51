"""The platform security log page, for platform staff only."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit_app.models import SECURITY_EVENT_KINDS, SecurityEvent
from audit_app.security_queries import SecurityLogQuery, security_log_page
from core.http import HtmxHttpRequest

PAGE_SIZE = 50


def staff_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sign-in first, then 404 for anyone who is not active platform staff, whatever the method:
    the page's existence is not revealed to operators."""

    @login_required
    @wraps(view)
    def for_staff(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (request.user.is_active and request.user.is_staff):
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return for_staff


@staff_page
@require_GET
def security_log(request: HtmxHttpRequest) -> HttpResponse:
    query = SecurityLogQuery.from_params(request.GET)
    page = security_log_page(query.apply(SecurityEvent.objects.all()), query, PAGE_SIZE)
    context = {
        "query": query,
        "page": page,
        "kinds": SECURITY_EVENT_KINDS,
        "newer_qs": query.query_string(after=page.newer_than) if page.newer_than else None,
        "older_qs": query.query_string(before=page.older_than) if page.older_than else None,
        "paged": query.before is not None or query.after is not None,
    }
    template = "audit_app/security_log.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)
