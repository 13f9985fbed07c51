"""While the database is away (restart, failover) every request gets a 503 with Retry-After that
says so, in the API's error shape under /api/, never a bare 500; other errors stay 500s."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client

from tests.factories import bearer

GONE = OperationalError('connection to server at "10.0.0.9", port 5432 failed: Connection refused')


@pytest.fixture
def quiet_client() -> Client:
    # Answers as production does instead of re-raising the view's exception into the test.
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("error", [GONE, InterfaceError("connection already closed")])
def test_the_api_answers_503_unavailable_with_retry_after(
    quiet_client: Client, personas: Any, api_token: Any, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    token = api_token("flows:read")

    def database_away(secret: str) -> None:
        raise error

    monkeypatch.setattr("tenants.api_auth.authenticate_token", database_away)
    response = quiet_client.get("/api/v1/flows", headers=bearer(token))
    assert response.status_code == 503 and response["Retry-After"] == "2"
    body = response.json()
    assert body["error"]["code"] == "unavailable" and "database cannot be reached" in body["error"]["message"]
    assert b"10.0.0.9" not in response.content


def test_a_console_page_answers_503_without_needing_the_database(
    quiet_client: Client, personas: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet_client.force_login(personas.owner)

    def database_away(self: Any) -> None:
        raise GONE

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", database_away)
    response = quiet_client.get(f"/t/{personas.tenant_a.slug}/actions/")
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert b"Unavailable for a moment" in response.content and b"10.0.0.9" not in response.content


def test_other_errors_stay_500_in_the_api_shape(
    quiet_client: Client, personas: Any, api_token: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api_token("flows:read")

    def broken(secret: str) -> None:
        raise RuntimeError("a bug with a secret in its message")

    monkeypatch.setattr("tenants.api_auth.authenticate_token", broken)
    response = quiet_client.get("/api/v1/flows", headers={**bearer(token), "X-Request-ID": "req-abcdef0123"})
    assert response.status_code == 500 and "Retry-After" not in response
    error = response.json()["error"]
    assert error["code"] == "internal_error" and b"secret" not in response.content
    assert "req-abcdef0123" in error["message"]
