"""Roll back and promote over the management API (contract §14): each answers like a slot PUT,
with the flow's new revision, and refuses like it (412 stale, 428 no `If-Match`, 422 naming fields)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Path, Router, Schema
from pydantic import ConfigDict

from core.api_errors import ApiError
from core.api_types import Text
from flows_app.api import (
    IF_MATCH_DESCRIPTION,
    FlowOut,
    FlowSlug,
    expected_revision_from,
    flow_document,
    flow_or_404,
    stale_revision_error,
)
from flows_app.prepared import flow_for_run
from flows_app.replacing import (
    MAX_REVISION_NUMBER,
    NoSuchRevision,
    NothingToChange,
    NotPromotable,
    ReplacementRefused,
    promote_flow,
    restore_revision,
)
from flows_app.services import StaleRevision
from tenants.api_auth import request_acting, request_token
from tenants.api_docs import responses, scope_required

router = Router(tags=["flows"])

RevisionNumber = Annotated[
    int, Path(description="The earlier revision to restore.", examples=[3], ge=1, le=MAX_REVISION_NUMBER)
]


class PromoteIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"from": "login-staging"}]})

    source: Text = Field(
        alias="from", min_length=1, description="Slug of the flow whose bindings replace the target's."
    )
    from_revision: int | None = Field(
        None,
        ge=1,
        le=MAX_REVISION_NUMBER,
        description="Promote this revision of the source instead of its current one (e.g. the one a preview showed).",
    )


def _answer(request: HttpRequest, response: HttpResponse, slug: str) -> dict[str, Any]:
    document = flow_document(flow_or_404(request_token(request), slug))
    response["ETag"] = f'"{document["revision"]}"'
    return document


@contextmanager
def _refusals_answered(refused_code: str) -> Iterator[None]:
    """Turn the refusals of a restore or a promote into the API's error answers."""
    try:
        yield
    except NoSuchRevision as missing:
        raise ApiError(404, "not_found", str(missing)) from missing
    except NotPromotable as refused:
        details = [{"field": refused.field, "message": str(refused)}]
        raise ApiError(422, "not_promotable", str(refused), details) from refused
    except StaleRevision as stale:
        raise stale_revision_error(stale) from stale
    except NothingToChange as unchanged:
        current = {"current_revision": unchanged.plan.base.number}
        raise ApiError(409, "nothing_to_change", str(unchanged), current) from unchanged
    except ReplacementRefused as refused:
        plan = refused.plan
        details = [{"field": p.field, "message": p.message} for p in plan.problems]
        named = sorted({f"{p.trigger} #{p.position} {p.action}" for p in plan.problems if p.position})
        message = f"{plan.note} would save bindings that are no longer valid ({', '.join(named) or 'see details'})"
        raise ApiError(422, refused_code, f"{message}; nothing was saved.", details) from refused


@router.post(
    "/{slug}/revisions/{number}/restore",
    response=responses({200: FlowOut}, 400, 403, 404, 409, 412, 422, 428),
    summary="Roll back: a new revision equal to an earlier one (If-Match: current revision)",
    **scope_required("flows:write"),
)
def restore(
    request: HttpRequest,
    slug: FlowSlug,
    number: RevisionNumber,
    response: HttpResponse,
    if_match: str | None = Header(None, alias="If-Match", examples=["5"], description=IF_MATCH_DESCRIPTION),
) -> dict[str, Any]:
    """Makes a new current revision whose every slot equals revision `number` (actions, pinned
    versions, config and secrets, enabled, on_error, timeout, order); history is not rewritten. The
    audit shows `flow.action_*` events noted "Restored revision N". 404 for an unknown revision, 409
    `nothing_to_change` when it equals the current one, 412 when `If-Match` is stale, 422
    `cannot_restore` when a binding of it can no longer be saved (its action was deleted, its config
    fails today's checks), `details` naming each (`login.post-auth.0.action`). Scope `flows:write`."""
    token = request_token(request)
    flow = flow_or_404(token, slug)
    expected = expected_revision_from(if_match)
    with _refusals_answered("cannot_restore"):
        restore_revision(flow, number, expected_revision=expected, acting=request_acting(request))
    return _answer(request, response, slug)


@router.post(
    "/{slug}/promote",
    response=responses({200: FlowOut}, 400, 403, 404, 409, 412, 422, 428),
    summary="Promote another flow's bindings into this one as one new revision (If-Match: this flow's revision)",
    **scope_required("flows:write"),
)
def promote(
    request: HttpRequest,
    slug: FlowSlug,
    body: PromoteIn,
    response: HttpResponse,
    if_match: str | None = Header(None, alias="If-Match", examples=["5"], description=IF_MATCH_DESCRIPTION),
) -> dict[str, Any]:
    """The bindings of the flow `from` (its current revision, or `from_revision`) replace every slot
    of this flow, which must be another flow of the same kind, as one new revision; the audit shows
    `flow.action_*` events noted "Promoted from SLUG rN". 404 when `from` names no flow of the token's
    tenant, 409 `nothing_to_change` when the bindings are already equal, 412 when `If-Match` is stale,
    422 naming the field `from` for the same flow or another kind, and `cannot_promote` naming each
    binding that fails today's checks. Scope `flows:write`."""
    token = request_token(request)
    target = flow_or_404(token, slug)
    expected = expected_revision_from(if_match)
    source = flow_for_run(token.tenant, body.source)
    if source is None:
        message = f"No flow {body.source!r} in this tenant to promote from."
        raise ApiError(404, "not_found", message, [{"field": "from", "message": message}])
    with _refusals_answered("cannot_promote"):
        promote_flow(
            source,
            target,
            source_revision=body.from_revision,
            expected_revision=expected,
            acting=request_acting(request),
        )
    return _answer(request, response, slug)
