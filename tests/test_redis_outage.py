"""While Redis is away or stalls, sign-ins are answered within their budget; rate-limit bindings fail
open or closed by their own on_error; nothing else that uses the cache breaks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from audit_app.models import SecurityEvent
from config import health
from core import rate_limits
from flows_app.services import BindingSpec
from tests.factories import PASSWORD, bearer, run_login
from tests.flow_helpers import attach

NOTHING_LISTENS = "redis://127.0.0.1:1/0"  # port 1: connection refused at once


def redis_cache_at(location: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }


@pytest.fixture(autouse=True)
def no_outage_left_over() -> Iterator[None]:
    rate_limits.forget_outage()
    health.forget_cached_readiness()
    yield
    rate_limits.forget_outage()
    health.forget_cached_readiness()


@pytest.fixture
def stalled_redis() -> Iterator[str]:
    """A Redis address that accepts connections and never answers (a hung or paused server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


PRE_CHECK = "login.pre-credential-check"


def limit_by_ip(personas: Any, on_error: str) -> None:
    """A rate limit first in the slot, then an action after it that must still run when the limit fails open."""
    attach(
        personas.tenant_a,
        PRE_CHECK,
        BindingSpec("rate-limit-by-ip", "1.1.0", {"limit": 100, "window_seconds": 60}, on_error=on_error),
        BindingSpec("domain-blocklist", "1.0.0", {"domains": ["blocked.example"]}),
    )


def sign_in(client: Any, token: str, email: str = "jane@example.com") -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = run_login(client, token, trigger=PRE_CHECK, user={"id": "u1", "email": email})
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    return response.json(), elapsed


def test_redis_down_a_fail_closed_rate_limit_blocks_and_says_why(client: Any, personas: Any, api_token: Any) -> None:
    limit_by_ip(personas, "block")
    token = api_token("runtime:execute")
    with override_settings(CACHES=redis_cache_at(NOTHING_LISTENS)):
        body, _ = sign_in(client, token)
    assert body["outcome"]["kind"] == "block"
    assert "rate-limit-by-ip failed" in body["outcome"]["reason"]
    [limit] = body["executions"]
    assert limit["error"]["code"] == "unavailable"
    assert "rate-limit counters (Redis) cannot be reached" in limit["error"]["message"]
    assert "127.0.0.1" not in str(body)


def test_redis_down_a_fail_open_rate_limit_lets_the_chain_go_on(client: Any, personas: Any, api_token: Any) -> None:
    limit_by_ip(personas, "continue")
    token = api_token("runtime:execute")
    with override_settings(CACHES=redis_cache_at(NOTHING_LISTENS)):
        allowed, _ = sign_in(client, token)
        blocked, _ = sign_in(client, token, email="eve@blocked.example")
    assert allowed["outcome"]["kind"] == "continue"
    assert [e["error"]["code"] if e["error"] else None for e in allowed["executions"]] == ["unavailable", None]
    # The action after the limit still ran and still decides.
    assert blocked["outcome"]["kind"] == "block" and "email domain" in blocked["outcome"]["reason"]


def test_a_stalled_redis_costs_one_short_wait_then_nothing(
    client: Any, personas: Any, api_token: Any, stalled_redis: str
) -> None:
    limit_by_ip(personas, "continue")
    token = api_token("runtime:execute")
    with override_settings(CACHES=redis_cache_at(stalled_redis)):
        answers = [sign_in(client, token) for _ in range(20)]
    first_ms = answers[0][1] * 1000
    rest_ms = sorted(elapsed * 1000 for _, elapsed in answers[1:])
    # The counter waits RATE_LIMIT_REDIS_TIMEOUT_MS (250 ms), not the cache's 2 s; then skips Redis.
    assert first_ms < 1000, first_ms
    assert rest_ms[len(rest_ms) // 2] < 50, rest_ms
    assert answers[0][0]["executions"][0]["error"]["message"].startswith("Not counted: the rate-limit counters")
    assert all(body["outcome"]["kind"] == "continue" for body, _ in answers)


def test_counters_try_redis_again_after_the_retry_interval(settings: Any) -> None:
    settings.RATE_LIMIT_REDIS_RETRY_SECONDS = 0.2
    with override_settings(CACHES=redis_cache_at(NOTHING_LISTENS)), pytest.raises(rate_limits.CountersUnavailable):
        rate_limits.count_hit("scope", 60)
    # Redis is back (here: the test's own cache), but this process waits out its interval first.
    with override_settings(CACHES=redis_cache_at(_working_redis_or_skip())):
        with pytest.raises(rate_limits.CountersUnavailable):
            rate_limits.count_hit("scope", 60)
        time.sleep(0.25)
        assert rate_limits.count_hit("scope", 60) >= 1


def _working_redis_or_skip() -> str:
    import os

    location = os.environ.get("REDIS_URL", "")
    if not location.startswith("redis"):
        pytest.skip("needs REDIS_URL (CI's PostgreSQL + Redis run)")
    return location


def test_the_api_limit_counts_in_the_process_while_redis_is_down(
    client: Any, personas: Any, api_token: Any, settings: Any
) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    token = api_token("actions:read")
    with override_settings(CACHES=redis_cache_at(NOTHING_LISTENS)):
        statuses = [client.get("/api/v1/whoami", headers=bearer(token)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_rejected_tokens_are_still_logged_while_redis_is_down(client: Any, db: None) -> None:
    with override_settings(CACHES=redis_cache_at(NOTHING_LISTENS)):
        response = client.get("/api/v1/whoami", headers=bearer("acx_guess_nope"))
    assert response.status_code == 401
    assert SecurityEvent.objects.filter(kind="api.token_rejected").count() == 1


def test_console_sign_in_and_out_work_while_redis_is_down(client: Any, personas: Any) -> None:
    with override_settings(CACHES=redis_cache_at(NOTHING_LISTENS)):
        response = client.post("/accounts/login/", {"username": personas.owner.username, "password": PASSWORD})
        assert response.status_code == 302, response.content[:500]
        assert client.get(f"/t/{personas.tenant_a.slug}/actions/").status_code == 200
        assert client.post("/accounts/logout/").status_code == 302
        assert client.get(f"/t/{personas.tenant_a.slug}/actions/").status_code == 302
