"""Request id and Content-Security-Policy for every response; the API's 405 in its error shape."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# No inline scripts anywhere: every script is a static file. Monaco needs inline styles and
# starts its workers from blob: URLs (see FINDINGS); nothing is loaded from another origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class RequestIdMiddleware:
    """Tag each request with an id (the load balancer's X-Request-ID if sane) for audit and logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class ApiMethodNotAllowedMiddleware:
    """The management API's 405 (django-ninja answers plain text) in the API's error shape,
    naming the methods the path takes, so a client's error handling needs one format."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or not request.path.startswith("/api/"):
            return response
        allowed = [method.strip() for method in response.get("Allow", "").split(",") if method.strip()]
        shaped = JsonResponse(
            {
                "error": {
                    "code": "method_not_allowed",
                    "message": f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}.",
                    "details": {"allowed_methods": allowed},
                }
            },
            status=405,
        )
        shaped["Allow"] = ", ".join(allowed)
        return shaped
