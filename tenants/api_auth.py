"""Bearer-token authentication, per-token rate limits and scope checks for the management API."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from core.api_errors import ApiError
from core.rate_limits import count_hit
from tenants.acting import Acting
from tenants.audit_hooks import record_rejected_token
from tenants.models import ApiToken
from tenants.services import authenticate_token

RATE_WINDOW_SECONDS = 60
DEFAULT_RATE_LIMIT_PER_MINUTE = 600
# Seconds since the epoch; tests replace it to hold a window still.
rate_clock = time.time


@dataclass(frozen=True)
class RateBudget:
    """Where a token stands in the current minute's window."""

    limit: int
    used: int
    retry_after: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.used > self.limit


def spend_request(token: ApiToken) -> RateBudget:
    """Count one request against the token's fixed one-minute window (aligned to the clock, so every
    app process shares it) and say whether it is still within API_RATE_LIMIT_PER_MINUTE."""
    limit = int(getattr(settings, "API_RATE_LIMIT_PER_MINUTE", DEFAULT_RATE_LIMIT_PER_MINUTE))
    now = rate_clock()
    window = int(now // RATE_WINDOW_SECONDS)
    # With Redis away each app process counts on its own: the limit holds per process, not overall.
    used = count_hit(f"api-rate:{token.key_id}", RATE_WINDOW_SECONDS, now=now, count_locally_if_down=True)
    retry_after = max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))
    return RateBudget(limit=limit, used=used, retry_after=retry_after)


def missing_scope(scope: str) -> ApiError:
    return ApiError(403, "missing_scope", f"This token lacks the scope {scope}.", {"required_scope": scope})


class TenantTokenAuth(HttpBearer):
    """A usable token (its tenant comes with it), counted against its rate limit and, when `scope` is
    given, carrying that scope. Runs before the body is read, so a token without the scope gets the
    403 naming it whatever it sent."""

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        api_token = authenticate_token(token)
        if api_token is None:
            # Into the platform security log (rate-guarded there), so a leaked or guessed token
            # being tried shows up; only its public id is kept.
            record_rejected_token(request, token)
            return None
        budget = spend_request(api_token)
        request.rate_budget = budget  # type: ignore[attr-defined]
        if budget.exhausted:
            raise ApiError(
                429,
                "rate_limited",
                f"This token made more than {budget.limit} requests this minute; retry in {budget.retry_after} s.",
                {"limit": budget.limit, "retry_after": budget.retry_after},
                headers={"Retry-After": str(budget.retry_after)},
            )
        if self.scope is not None and not api_token.has_scope(self.scope):
            raise missing_scope(self.scope)
        return api_token


def request_token(request: HttpRequest) -> ApiToken:
    """The token TenantTokenAuth accepted for this request."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    return token


def request_acting(request: HttpRequest) -> Acting:
    """The acting context of an API request (its token), built once and kept on the request."""
    acting: Acting | None = getattr(request, "acting", None)
    if acting is None:
        acting = Acting.for_token(request, request_token(request))
        request.acting = acting  # type: ignore[attr-defined]
    return acting
