"""A custom action's secrets in the management API (contract §11): list them by name, set or replace
one, delete one. Values go in and never come out; the service (actions_app.secrets) audits by name."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Path, Router, Schema
from pydantic import ConfigDict

from actions_app.models import Action, ActionSecret
from actions_app.secrets import NAME_RULE, SecretRefused, delete_secret, list_secrets, set_secret
from core.api_errors import ApiError
from core.api_types import Text
from tenants.api_auth import request_acting, request_token
from tenants.api_docs import responses, scope_required

router = Router(tags=["actions"])

ActionSlug = Annotated[Text, Path(description="The action's slug.", examples=["risk-gate"])]
SecretName = Annotated[Text, Path(description=f"The secret's name: {NAME_RULE}.", examples=["API_KEY"])]


class SecretListing(Schema):
    name: str
    updated_at: datetime = Field(description="When its value was last set.")
    updated_by: str = Field(description="Who set it: an operator's username or an API token's name.")


class SecretList(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"name": "API_KEY", "updated_at": "2025-01-31T14:30:00Z", "updated_by": "jane"}]}]
        }
    )

    items: list[SecretListing] = Field(description="The action's secrets by name; values are never shown.")


class SecretValue(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"value": "sk_live_0123456789abcdef"}]})

    value: Text = Field(description="The secret's value: at most 4 KiB of UTF-8, not empty. Never shown again.")


def _action_or_404(request: HttpRequest, slug: str) -> Action:
    action = Action.objects.for_tenant(request_token(request).tenant).filter(slug=slug).first()
    if action is None:
        raise ApiError(404, "not_found", f"No action with the slug {slug!r} in this tenant.")
    return action


@router.get(
    "/{slug}/secrets",
    response=responses({200: SecretList}, 403, 404, 422),
    summary="The action's secrets, by name",
    **scope_required("actions:read"),
)
def list_action_secrets(request: HttpRequest, slug: ActionSlug) -> dict[str, Any]:
    """Names of the action's secrets, when each was set and by whom, ordered by name; never a value.
    Scope `actions:read`."""
    action = _action_or_404(request, slug)
    return {"items": [vars(listing) for listing in list_secrets(action)]}


@router.put(
    "/{slug}/secrets/{name}",
    response=responses({204: None}, 403, 404, 422),
    summary="Set or replace a secret of a custom action",
    **scope_required("actions:write"),
)
def put_action_secret(request: HttpRequest, slug: ActionSlug, name: SecretName, body: SecretValue) -> tuple[int, None]:
    """Sets the secret `name`, replacing its value if it exists; every version of the action reads
    it as `input.secrets.NAME`. A bad name or value, or a template action (they have none), is a 422
    naming the field. Audited as `action.secret_set` with the name only. Scope `actions:write`."""
    action = _action_or_404(request, slug)
    try:
        set_secret(action, name, body.value, acting=request_acting(request))
    except SecretRefused as refused:
        details = [{"field": refused.field, "message": refused.message}]
        raise ApiError(422, "invalid_secret", refused.message, details) from refused
    return 204, None


@router.delete(
    "/{slug}/secrets/{name}",
    response=responses({204: None}, 403, 404, 422),
    summary="Delete a secret",
    **scope_required("actions:write"),
)
def delete_action_secret(request: HttpRequest, slug: ActionSlug, name: SecretName) -> tuple[int, None]:
    """Deletes the secret `name`; 404 when the action has none by that name. Audited as
    `action.secret_deleted` with the name only. Scope `actions:write`."""
    action = _action_or_404(request, slug)
    try:
        delete_secret(action, name, acting=request_acting(request))
    except ActionSecret.DoesNotExist as missing:
        raise ApiError(404, "not_found", f"The action {slug!r} has no secret named {name!r}.") from missing
    return 204, None
