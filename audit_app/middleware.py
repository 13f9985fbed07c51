"""Request-scoped state of flow run records."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit_app.reading import UNRECORDED_IN_REQUEST


class UnrecordedRunsMiddleware:
    """Each request starts with nothing unrecorded, whatever the thread's last request left."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = UNRECORDED_IN_REQUEST.set(None)
        try:
            return self.get_response(request)
        finally:
            UNRECORDED_IN_REQUEST.reset(token)
