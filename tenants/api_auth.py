"""Bearer-token authentication and scope checks for the management API."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from tenants.models import ApiToken
from tenants.services import authenticate_token


class ApiError(Exception):
    """An error answered in the contract's shape: {"error": {"code", "message", "details"}}."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else []


class TenantTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return authenticate_token(token)


def require_scope(request: HttpRequest, scope: str) -> ApiToken:
    """The request's token, if it carries `scope`; otherwise a 403 that names the missing scope."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    if not token.has_scope(scope):
        raise ApiError(403, "missing_scope", f"This token lacks the scope {scope}.", {"required_scope": scope})
    return token
