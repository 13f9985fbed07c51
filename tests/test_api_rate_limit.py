"""Per-token rate limit of the management API: a fixed one-minute window counted in the cache."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import bearer

# Inside one clock minute, so the window cannot roll over halfway through a test.
FROZEN_NOW = 1_899_999_960.0 + 15  # 1_899_999_960 is a whole minute


@pytest.fixture
def three_per_minute(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    monkeypatch.setattr("tenants.api_auth.rate_clock", lambda: FROZEN_NOW)


def test_answers_tell_the_limit_and_what_is_left(client: Any, api_token: Any, three_per_minute: None) -> None:
    token = api_token("actions:read")
    remaining = []
    for _ in range(3):
        response = client.get("/api/v1/whoami", headers=bearer(token))
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        remaining.append(response["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]


def test_past_the_limit_it_answers_429_with_retry_after(client: Any, api_token: Any, three_per_minute: None) -> None:
    token = api_token("actions:read", "flows:read")
    for _ in range(3):
        assert client.get("/api/v1/whoami", headers=bearer(token)).status_code == 200
    response = client.get("/api/v1/flows", headers=bearer(token))
    assert response.status_code == 429
    # 15 s into the minute: the next window starts in 45 s.
    assert response["Retry-After"] == "45"
    assert response["X-RateLimit-Remaining"] == "0"
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert "3 requests" in error["message"]
    assert error["details"] == {"limit": 3, "retry_after": 45}


def test_each_token_has_its_own_budget(client: Any, api_token: Any, three_per_minute: None) -> None:
    busy, other = api_token("actions:read"), api_token("actions:read")
    for _ in range(4):
        client.get("/api/v1/whoami", headers=bearer(busy))
    assert client.get("/api/v1/whoami", headers=bearer(busy)).status_code == 429
    assert client.get("/api/v1/whoami", headers=bearer(other)).status_code == 200


def test_the_next_minute_starts_a_fresh_window(
    client: Any, api_token: Any, three_per_minute: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api_token("actions:read")
    for _ in range(3):
        client.get("/api/v1/whoami", headers=bearer(token))
    assert client.get("/api/v1/whoami", headers=bearer(token)).status_code == 429
    monkeypatch.setattr("tenants.api_auth.rate_clock", lambda: FROZEN_NOW + 45)
    response = client.get("/api/v1/whoami", headers=bearer(token))
    assert response.status_code == 200 and response["X-RateLimit-Remaining"] == "2"


def test_requests_without_a_valid_token_are_not_counted(client: Any, api_token: Any, three_per_minute: None) -> None:
    token = api_token("actions:read")
    for _ in range(5):
        assert client.get("/api/v1/whoami", headers=bearer("acx_nope_nope")).status_code == 401
    assert client.get("/api/v1/whoami", headers=bearer(token))["X-RateLimit-Remaining"] == "2"
