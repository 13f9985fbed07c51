"""Schemathesis against /api/v1/openapi.json: for every operation, generated requests (valid and
invalid) never get a 5xx, and every answer has a documented status and matches its schema.

The app is called in-process through WSGI with a token that has every scope, inside the test's
database transaction. Examples are derandomized, so a run is repeatable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from actions_app.versioning import VersionDraft, create_custom_action, publish_version
from tenants.acting import Acting
from tenants.models import API_SCOPES

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
# A NUL in a string must be refused with a 422 naming the field, so keep generating them.
schema.config.generation.update(allow_x00=True)

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
SOURCE = """export async function execute(input: ActionInput): Promise<ActionResult> {
  if (input.context.risk.score > 95) return { kind: "block", reason: "Too risky" };
  return { kind: "continue" };
}
"""


@pytest.fixture
def keep_the_test_transaction() -> Iterator[None]:
    # A real WSGI request closes "old" connections when it starts and ends, which would close the
    # connection holding the test's transaction; Django's test client unhooks this the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def all_scopes_token(personas: Any, api_token: Any, settings: Any, keep_the_test_transaction: None) -> str:
    """A token of tenant A with every scope, and the objects the documented examples name."""
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    outcome = create_custom_action(
        personas.tenant_a,
        name="Risk gate",
        slug="risk-gate",
        draft=VersionDraft(SOURCE, {"type": "object", "properties": {}}, ["login.post-auth"]),
        acting=Acting.platform("tests"),
    )
    publish_version(outcome.version, acting=Acting.platform("tests"))
    return str(api_token(*API_SCOPES))


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_its_openapi_document(case: Any, all_scopes_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {all_scopes_token}"}, checks=CHECKS)
