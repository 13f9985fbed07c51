"""What every management-API operation shares: the error shape (contract §9), the documented error
answers, rate-limit headers, and the NinjaAPI that puts them in the OpenAPI document.

Routers import `responses` to declare their answers and `scope_required` for the token scope:

    @router.get("/{slug}", response=responses({200: FlowOut}, 403, 404, 422), **scope_required("flows:read"))

401 and 429 are added to every operation: any of them can answer those before it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import ConfigDict

from core.api_errors import ApiError
from tenants.api_auth import RateBudget, TenantTokenAuth


class ErrorInfo(Schema):
    code: str = Field(description="A stable code a client can branch on, e.g. `missing_scope`, `stale_revision`.")
    message: str = Field(description="What went wrong, in plain words.")
    details: list[Any] | dict[str, Any] = Field(
        description="Specifics: `[{field, message}]` for invalid input, `[{line, column, message}]` for "
        "TypeScript errors, or an object such as `{required_scope}` / `{current_revision}`."
    )


class ErrorResponse(Schema):
    """Every error answer of the API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "missing_scope",
                        "message": "This token lacks the scope actions:write.",
                        "details": {"required_scope": "actions:write"},
                    }
                }
            ]
        }
    )

    error: ErrorInfo


ERROR_DESCRIPTIONS = {
    400: "The body is not JSON, or a query parameter or header cannot be understood (for example a `cursor` "
    "that no page gave, or `limit` below 1); `details` names it.",
    401: "No bearer token, or one that is unknown, revoked or expired (`WWW-Authenticate: Bearer`).",
    403: "The token lacks the scope this operation needs; `details.required_scope` names it.",
    404: "Nothing with that slug or version in the token's tenant.",
    409: "The request conflicts with the current state.",
    412: "`If-Match` names a revision that is no longer current; `details.current_revision` is the current one.",
    422: "The body, a parameter or a header is invalid; `details` lists each problem with the field "
    "(or `line`/`column` for TypeScript errors).",
    428: "`If-Match` is missing: GET the resource and send its revision.",
    429: "The token used up its requests for this minute (`API_RATE_LIMIT_PER_MINUTE`); retry after "
    "`Retry-After` seconds.",
}
ALWAYS_POSSIBLE = (401, 429)
ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"


def responses(success: dict[int, Any], *errors: int) -> dict[int, Any]:
    """An operation's `response=` mapping: its success schemas plus the shared error schema for each
    error status it can answer, and for 401 and 429, which any authenticated operation can."""
    unknown = set(errors) - set(ERROR_DESCRIPTIONS)
    assert not unknown, f"undocumented error statuses {unknown}"
    return {**success, **dict.fromkeys(sorted({*ALWAYS_POSSIBLE, *errors}), ErrorResponse)}


def scope_required(scope: str) -> dict[str, Any]:
    """Decorator arguments of an operation that needs `scope`: enforced by the token check (before
    the body is read) and named in the OpenAPI document's security requirement."""
    return {"auth": TenantTokenAuth(scope), "openapi_extra": {"x-required-scope": scope}}


def error_response(
    api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str, details: Any = None
) -> HttpResponse:
    body = {"error": {"code": code, "message": message, "details": details if details is not None else []}}
    return api.create_response(request, body, status=status)


RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "Requests the token may make per minute.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current minute.",
        "schema": {"type": "integer"},
    },
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds until the token's next minute starts.",
        "schema": {"type": "integer"},
    }
}


class ManagementAPI(NinjaAPI):
    """The NinjaAPI of /api/v1/: answers carry the token's rate-limit headers, errors use the
    contract's shape, and the OpenAPI document explains every error status."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exception_handler(ApiError)(self._on_api_error)
        self.exception_handler(AuthenticationError)(self._on_auth_error)
        self.exception_handler(ValidationError)(self._on_validation_error)
        self.exception_handler(HttpError)(self._on_http_error)
        self.exception_handler(Http404)(self._on_not_found)

    def create_response(
        self,
        request: HttpRequest,
        data: Any,
        *,
        status: int | None = None,
        temporal_response: HttpResponse | None = None,
    ) -> HttpResponse:
        response = super().create_response(request, data, status=status, temporal_response=temporal_response)
        budget: RateBudget | None = getattr(request, "rate_budget", None)
        if budget is not None:
            response["X-RateLimit-Limit"] = str(budget.limit)
            response["X-RateLimit-Remaining"] = str(budget.remaining)
        return response

    def _on_api_error(self, request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = error_response(self, request, exc.status, exc.code, exc.message, exc.details)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    def _on_auth_error(self, request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = error_response(self, request, 401, "unauthenticated", "A valid bearer token is required.")
        response["WWW-Authenticate"] = "Bearer"
        return response

    def _on_validation_error(self, request: HttpRequest, exc: ValidationError) -> HttpResponse:
        details = [
            {"field": ".".join(str(part) for part in _field_path(err.get("loc", []))), "message": err.get("msg", "")}
            for err in exc.errors
        ]
        return error_response(
            self, request, 422, "invalid_request", "The request body, parameters or headers are invalid.", details
        )

    def _on_http_error(self, request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja raises these itself: a 400 when the body cannot be parsed as JSON.
        if exc.status_code == 400:
            message = "The request body is not valid JSON."
            return error_response(self, request, 400, "invalid_json", message, [{"field": "body", "message": message}])
        return error_response(self, request, exc.status_code, "http_error", exc.message)

    def _on_not_found(self, request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response(self, request, 404, "not_found", str(exc) or "Not found.")

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        document = super().get_openapi_schema(**kwargs)
        for operations in document["paths"].values():
            for operation in operations.values():
                _describe_operation(operation)
        return document


def _field_path(location: Sequence[Any]) -> list[Any]:
    # Ninja's locations start with the source ("body", "query", "header", "path"); a body's next
    # part is the parameter name of the whole body, which means nothing to a client. Pydantic
    # gives a tuple, so compare parts, not a list slice with a tuple.
    parts = list(location)
    if parts[:1] == ["body"]:
        return parts[2:]
    return parts[1:]


def _describe_operation(operation: dict[str, Any]) -> None:
    if "requestBody" in operation and "400" not in operation["responses"] and 400 not in operation["responses"]:
        # Any operation that reads a JSON body answers 400 to one that is not JSON.
        operation["responses"]["400"] = {"content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}}}
    secured = bool(operation.get("security"))
    scope = operation.get("x-required-scope")
    if secured and scope:
        # OpenAPI 3.1 lets a non-OAuth requirement list the roles it needs: here, the token scope.
        operation["security"] = [{name: [scope] for requirement in operation["security"] for name in requirement}]
    for status, answer in operation["responses"].items():
        code = int(status)
        if code in ERROR_DESCRIPTIONS:
            answer["description"] = ERROR_DESCRIPTIONS[code]
        if code == 429:
            answer["headers"] = {**RETRY_AFTER_HEADER, **RATE_LIMIT_HEADERS}
        elif secured and code < 400:
            answer["headers"] = dict(RATE_LIMIT_HEADERS)
    for parameter in operation.get("parameters", []):
        # OpenAPI wants a parameter's `examples` as a map of Example Objects; pydantic gives a list.
        examples = parameter.pop("examples", None)
        if isinstance(examples, list) and examples:
            parameter["example"] = examples[0]
