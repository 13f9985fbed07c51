"""Request id and Content-Security-Policy for every response; the API's 404 and 405 in its error
shape; a 413 for a body over the upload limit and
a 400 for a Content-Length that is no number; a 503 while the database is away."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

from core.http import parse_count

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


CONTENT_LENGTH_MESSAGE = "The Content-Length header must be the body's length in bytes, written with the digits 0-9."


def _upload_limit_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than the {limit / 1024 / 1024:.1f} MiB limit ({limit:,} bytes)."


def _too_large_response(request: HttpRequest) -> HttpResponse:
    message = _upload_limit_message()
    if request.path.startswith("/api/"):
        error = {"code": "payload_too_large", "message": message, "details": [{"field": "body", "message": message}]}
        return JsonResponse({"error": error}, status=413)
    page = render_to_string("413.html", {"message": message}, request=request)
    return HttpResponse(page, status=413)


class RequestBodyLimitMiddleware:
    """A body declared over DATA_UPLOAD_MAX_MEMORY_SIZE is answered 413 before anything reads it.

    Django itself raises RequestDataTooBig wherever the body is first read (the CSRF check, a
    form, the API's JSON parser), which ends as a bare 400 that does not say what is wrong."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared_text = request.META.get("CONTENT_LENGTH") or ""
        declared = parse_count(declared_text)
        if declared is None and declared_text.strip():
            # Django reads it with int() when the body is first read: "abc" was a 500 there, and
            # "1_0" or " ٣" would be read as a length.
            return _bad_request_response(request, "Content-Length", CONTENT_LENGTH_MESSAGE)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if declared is not None and limit is not None and declared > limit:
            return _too_large_response(request)
        return self.get_response(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: what the middleware cannot see from the headers (a multipart form whose fields
    add up past the limit, too many fields), said plainly, and in the API's error shape there."""
    if isinstance(exception, RequestDataTooBig):
        return _too_large_response(request)
    reason = str(exception) if isinstance(exception, SuspiciousOperation) and str(exception) else "Bad request."
    return _bad_request_response(request, None, reason)


def _bad_request_response(request: HttpRequest, field: str | None, reason: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        details = [{"field": field, "message": reason}] if field else []
        return JsonResponse({"error": {"code": "bad_request", "message": reason, "details": details}}, status=400)
    return HttpResponse(render_to_string("400.html", {"message": reason}, request=request), status=400)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path under /api/ that no endpoint has answers in the API's error shape (the
    endpoints' own 404s already do); the console keeps templates/404.html."""
    if request.path.startswith("/api/"):
        message = "There is no API endpoint at this path; the endpoints are listed in /api/v1/openapi.json."
        return JsonResponse({"error": {"code": "not_found", "message": message, "details": []}}, status=404)
    return defaults.page_not_found(request, exception)


# Retry-After on a 503: PostgreSQL restarting or failing over takes a few seconds.
DATABASE_AWAY_RETRY_AFTER_SECONDS = 2


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. An error because the database cannot be reached (restart, failover, a full
    connection table) is a 503 with Retry-After, so a sign-in's caller retries or applies its own
    fail-open/closed rule; anything else stays a 500. Under /api/ both come in the API's error shape.
    The console's page is rendered without the request: its context processors read the database."""
    in_flight = sys.exc_info()[1]
    if isinstance(in_flight, OperationalError | InterfaceError):
        message = "The database cannot be reached just now; nothing was done. Retry in a few seconds."
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"error": {"code": "unavailable", "message": message, "details": []}}, status=503
            )
        else:
            response = HttpResponse(render_to_string("503.html", {"message": message}), status=503)
        response["Retry-After"] = str(DATABASE_AWAY_RETRY_AFTER_SECONDS)
        return response
    if request.path.startswith("/api/"):
        request_id = getattr(request, "request_id", "")
        message = "Something went wrong on our side; it has been logged" + (
            f" with request id {request_id}." if request_id else "."
        )
        return JsonResponse({"error": {"code": "internal_error", "message": message, "details": []}}, status=500)
    return defaults.server_error(request)
