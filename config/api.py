"""The management API (contract §9), mounted at /api/v1/."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Schema

from flows_app.actions_api import router as actions_router
from flows_app.api import router as flows_router
from tenants.api_auth import TenantTokenAuth
from tenants.api_docs import ManagementAPI, responses
from tenants.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from tenants.models import IDEMPOTENCY_KEY_LIFETIME_HOURS, ApiToken

api = ManagementAPI(
    title="Actions console management API",
    version="1",
    description=f"""Manage a tenant's Actions, flows and audit history.

**Authentication.** `Authorization: Bearer <token>`. A token belongs to one tenant and carries scopes
(`actions:read actions:write actions:publish flows:read flows:write audit:read runtime:execute`);
each operation names the scope it needs (`x-required-scope`), and a 403 names the missing one.

**Errors** are `{{"error": {{"code", "message", "details"}}}}` with 400/401/403/404/409/412/422 (and 428
for a missing `If-Match`, 429 for the rate limit).

**Pagination.** List endpoints take `?limit=&cursor=` and answer `{{"items": [...], "next": cursor-or-null}}`;
pass `next` back as `cursor` for the following page.

**Rate limit.** Each token may make `API_RATE_LIMIT_PER_MINUTE` requests per clock minute (600 by
default). Answers carry `X-RateLimit-Limit` and `X-RateLimit-Remaining`; past the limit a 429 says
in `Retry-After` how many seconds until the next minute.

**Idempotency.** `POST /actions`, `POST /actions/{{slug}}/versions` and `POST /actions/{{slug}}/rollout` accept
`{IDEMPOTENCY_HEADER}`: a retry
with the same key and body within {IDEMPOTENCY_KEY_LIFETIME_HOURS} h answers the first response again with
`{REPLAYED_HEADER}: true` and creates nothing; the same key with another body is a 422.""",
    urls_namespace="api",
    auth=TenantTokenAuth(),
    # The interactive docs page loads its assets from a CDN; the JSON document is enough.
    docs_url=None,
)


class WhoAmI(Schema):
    tenant: str
    token: str
    scopes: list[str]


@api.get("/whoami", response=responses({200: WhoAmI}), summary="The token's tenant and scopes (any valid token)")
def whoami(request: HttpRequest) -> dict[str, object]:
    """Which tenant the token belongs to, its name and its scopes; needs no particular scope."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    return {"tenant": token.tenant.slug, "token": token.name, "scopes": token.scopes}


api.add_router("/actions", actions_router)
api.add_router("/actions", "flows_app.rollout_api.router")
api.add_router("/actions", "flows_app.action_secrets_api.router")
api.add_router("/flows", flows_router)
api.add_router("/flows", "flows_app.replace_api.router")
api.add_router("/flows", "flows_app.runs_api.router")
api.add_router("/audit", "audit_app.api.router")
