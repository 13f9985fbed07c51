"""Idempotency-Key on the API's creating POSTs: a retry replays the first answer and creates nothing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from actions_app.models import Action, ActionVersion
from audit_app.models import AuditEvent
from tenants.models import IdempotentRequest
from tests.factories import BAD, GOOD, bearer, new_action, post

VERSIONS = "/api/v1/actions/risk-gate/versions"


def post_with_key(client: Any, url: str, token: str, body: dict[str, Any], key: str) -> Any:
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        headers={**bearer(token), "Idempotency-Key": key},
    )


def versions_of(slug: str) -> list[str]:
    return sorted(ActionVersion.objects.filter(action__slug=slug).values_list("version", flat=True))


@pytest.fixture
def writer(personas: Any, api_token: Any, client: Any) -> str:
    token = api_token("actions:read", "actions:write")
    assert new_action(client, token).status_code == 201
    return token


def test_a_replay_renders_times_exactly_as_the_first_answer(client: Any, writer: str, monkeypatch: Any) -> None:
    # Under a millisecond past the second: the first answer says ".000Z"; a replay stored at
    # millisecond precision read back as a whole second and said "Z" (seen failing once in CI).
    at = datetime(2026, 11, 26, 15, 14, 39, 500, tzinfo=UTC)
    monkeypatch.setattr(ActionVersion._meta.get_field("created_at"), "_get_default", lambda: at)
    body = {"source": GOOD + "// sub-millisecond", "bump": "minor"}
    first = post_with_key(client, VERSIONS, writer, body, "deploy-time")
    retry = post_with_key(client, VERSIONS, writer, body, "deploy-time")
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["created_at"] == first.json()["created_at"] == "2026-11-26T15:14:39.000Z"


def test_a_retried_version_post_replays_the_first_answer(client: Any, writer: str) -> None:
    body = {"source": GOOD + "// retried", "bump": "minor"}
    first = post_with_key(client, VERSIONS, writer, body, "deploy-7f3a")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    retry = post_with_key(client, VERSIONS, writer, body, "deploy-7f3a")
    assert retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.json()["version"] == "0.2.0"
    assert versions_of("risk-gate") == ["0.1.0", "0.2.0"]
    assert AuditEvent.objects.filter(type="action.version_saved", action_version="0.2.0").count() == 1


def test_without_a_key_each_post_is_new_work(client: Any, writer: str) -> None:
    post(client, VERSIONS, writer, {"source": GOOD + "// a", "bump": "minor"})
    post(client, VERSIONS, writer, {"source": GOOD + "// b", "bump": "minor"})
    assert versions_of("risk-gate") == ["0.1.0", "0.2.0", "0.3.0"]
    assert not IdempotentRequest.objects.exists()


def test_the_same_key_with_another_body_is_refused_naming_the_header(client: Any, writer: str) -> None:
    assert post_with_key(client, VERSIONS, writer, {"source": GOOD + "// one"}, "k-1").status_code == 201
    response = post_with_key(client, VERSIONS, writer, {"source": GOOD + "// two"}, "k-1")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert error["details"] == [{"field": "Idempotency-Key", "message": error["details"][0]["message"]}]
    assert "different request" in error["message"]
    assert versions_of("risk-gate") == ["0.1.0", "0.1.1"]


def test_a_key_used_on_another_endpoint_is_refused(client: Any, writer: str) -> None:
    assert post_with_key(client, VERSIONS, writer, {"source": GOOD + "// one"}, "k-2").status_code == 201
    body = {"name": "Other", "slug": "other", "compatible_triggers": ["login.post-auth"], "source": GOOD}
    response = post_with_key(client, "/api/v1/actions", writer, body, "k-2")
    assert response.status_code == 422
    assert not Action.objects.filter(slug="other").exists()


def test_the_same_request_on_another_endpoint_is_refused_by_its_key(client: Any, writer: str) -> None:
    # Same body, same key: only the URL differs, and that alone makes it another request.
    created = {"name": "Other", "slug": "other", "compatible_triggers": ["login.post-auth"], "source": GOOD}
    assert post_with_key(client, "/api/v1/actions", writer, created, "k-other").status_code == 201
    body = {"source": GOOD + "// same"}
    assert post_with_key(client, VERSIONS, writer, body, "k-3").status_code == 201
    response = post_with_key(client, "/api/v1/actions/other/versions", writer, body, "k-3")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert versions_of("other") == ["0.1.0"]


def test_a_malformed_key_is_a_422_naming_the_header(client: Any, writer: str) -> None:
    for key in ["has space", "x" * 256]:
        response = post_with_key(client, VERSIONS, writer, {"source": GOOD + "// k"}, key)
        assert response.status_code == 422, key
        assert response.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    assert versions_of("risk-gate") == ["0.1.0"]


def test_an_error_answer_is_not_kept_so_the_key_can_be_retried(client: Any, writer: str) -> None:
    failed = post_with_key(client, VERSIONS, writer, {"source": BAD}, "fix-and-retry")
    assert failed.status_code == 422 and failed.json()["error"]["code"] == "type_errors"
    fixed = post_with_key(client, VERSIONS, writer, {"source": GOOD + "// fixed"}, "fix-and-retry")
    assert fixed.status_code == 201
    assert versions_of("risk-gate") == ["0.1.0", "0.1.1"]


def test_keys_expire_after_24_hours(client: Any, writer: str) -> None:
    assert post_with_key(client, VERSIONS, writer, {"source": GOOD + "// old"}, "old-key").status_code == 201
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    again = post_with_key(client, VERSIONS, writer, {"source": GOOD + "// new"}, "old-key")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert again.json()["version"] == "0.1.2"
    assert IdempotentRequest.objects.count() == 1


def test_keys_belong_to_the_tenant(client: Any, writer: str, personas: Any, api_token: Any) -> None:
    theirs = api_token("actions:read", "actions:write", tenant=personas.tenant_b)
    assert post_with_key(client, VERSIONS, writer, {"source": GOOD + "// mine"}, "shared").status_code == 201
    body = {"name": "Risk gate", "slug": "risk-gate", "compatible_triggers": ["login.post-auth"], "source": GOOD}
    response = post_with_key(client, "/api/v1/actions", theirs, body, "shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Action.objects.filter(slug="risk-gate").count() == 2


def test_a_retried_action_create_replays_and_creates_one_action(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:read", "actions:write")
    body = {"name": "Geo fence", "compatible_triggers": ["login.post-auth"], "source": GOOD}
    first = post_with_key(client, "/api/v1/actions", token, body, "rollout-42")
    retry = post_with_key(client, "/api/v1/actions", token, body, "rollout-42")
    assert first.status_code == retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == first.json()
    assert Action.objects.filter(tenant=personas.tenant_a, slug="geo-fence").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_create_one_version(personas: Any, api_token: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL's row locks (CI runs both)")
    token = api_token("actions:read", "actions:write")
    assert new_action(Client(), token).status_code == 201
    body = {"source": GOOD + "// raced", "bump": "minor"}
    start = threading.Barrier(4)
    answers: list[Any] = []
    lock = threading.Lock()

    def retry() -> None:
        try:
            start.wait()
            response = post_with_key(Client(), VERSIONS, token, body, "raced-key")
            with lock:
                answers.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [a.status_code for a in answers] == [201] * 4
    assert {a.json()["version"] for a in answers} == {"0.2.0"}
    assert sum(1 for a in answers if a.get("Idempotent-Replayed") == "true") == 3
    assert versions_of("risk-gate") == ["0.1.0", "0.2.0"]
