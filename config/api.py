"""The management API (contract §9), mounted at /api/v1/."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, ValidationError

from actions_app.api import router as actions_router
from flows_app.api import router as flows_router
from tenants.api_auth import ApiError, TenantTokenAuth
from tenants.models import ApiToken

api = NinjaAPI(
    title="Actions console management API",
    version="1",
    description="Manage a tenant's Actions, flows and audit history. Authenticate with "
    "`Authorization: Bearer <token>`; a token belongs to one tenant and carries scopes.",
    urls_namespace="api",
    auth=TenantTokenAuth(),
    # The interactive docs page loads its assets from a CDN; the JSON document is enough.
    docs_url=None,
)


class WhoAmI(Schema):
    tenant: str
    token: str
    scopes: list[str]


@api.get("/whoami", response=WhoAmI, summary="The token's tenant and scopes (any valid token)")
def whoami(request: HttpRequest) -> dict[str, object]:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    return {"tenant": token.tenant.slug, "token": token.name, "scopes": token.scopes}


api.add_router("/actions", actions_router)
api.add_router("/actions", "actions_app.rollout_api.router")
api.add_router("/flows", flows_router)
api.add_router("/audit", "audit_app.api.router")


def _error(request: HttpRequest, status: int, code: str, message: str, details: object = None) -> HttpResponse:
    return api.create_response(
        request, {"error": {"code": code, "message": message, "details": details or []}}, status=status
    )


@api.exception_handler(ApiError)
def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message, exc.details)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(request, 401, "unauthenticated", "A valid bearer token is required.")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [
        {"field": ".".join(str(part) for part in err.get("loc", [])[1:]), "message": err.get("msg", "")}
        for err in exc.errors
    ]
    return _error(request, 422, "invalid_request", "The request body or parameters are invalid.", details)


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", str(exc) or "Not found.")
