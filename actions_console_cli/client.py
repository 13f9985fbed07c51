"""The few management-API calls a rollout makes, with timeouts and safe retries.

Only failures where the request may not have been processed are retried: connection errors,
timeouts and 502/503/504 from a proxy. The rollout POST carries an Idempotency-Key, so a retry of
a request that did reach the server gets that first answer back instead of applying it twice
(and an identical rollout changes nothing anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

# Answers that mean the request was not processed: a proxy's, or the API's rate limit.
RETRYABLE_STATUSES = {429, 502, 503, 504}
MAX_RETRY_AFTER_SECONDS = 60.0
USER_AGENT = "actions-console-rollout/1"


class ApiFailure(Exception):
    """A call that did not succeed, in words an operator can act on."""

    def __init__(self, reason: str, status: int | None = None, code: str = "", details: list[str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code
        self.details = details or []


def _detail_lines(details: Any) -> list[str]:
    """The API's error details as lines: type errors with line and column, field errors by field."""
    if isinstance(details, dict):
        return [f"{key}: {value}" for key, value in details.items()]
    if not isinstance(details, list):
        return []
    lines = []
    for item in details:
        if isinstance(item, dict) and "line" in item:
            code = f" ({item['code']})" if item.get("code") else ""
            lines.append(f"line {item['line']}, column {item.get('column', '?')}: {item.get('message', '')}{code}")
        elif isinstance(item, dict) and "field" in item:
            lines.append(f"{item['field']}: {item.get('message', '')}")
        else:
            lines.append(str(item))
    return lines


def failure_from_response(response: httpx.Response) -> ApiFailure:
    if response.is_redirect:
        target = response.headers.get("Location", "?")
        return ApiFailure(
            f"{response.request.url} redirects to {target}; put that URL in the tenants file",
            status=response.status_code,
        )
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict) or "message" not in error:
        return ApiFailure(
            f"HTTP {response.status_code} from {response.request.url} (is this the console's base URL?)",
            status=response.status_code,
        )
    reason = str(error["message"])
    if response.status_code == 401:
        reason = "the token was rejected (revoked, expired or mistyped)"
    return ApiFailure(reason, response.status_code, str(error.get("code", "")), _detail_lines(error.get("details")))


class ConsoleClient:
    """One console (base URL) and one token: one tenant."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        token: str,
        *,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.retried = 0

    def _send(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        url = self.base_url + path
        attempt = 0
        while True:
            wait = self.backoff_seconds * 2**attempt
            try:
                response = self.http.request(method, url, json=json, headers={**self.headers, **(headers or {})})
            except httpx.TransportError as error:
                if attempt >= self.retries:
                    raise ApiFailure(f"cannot reach {url}: {_transport_reason(error)}") from error
            else:
                wait = max(wait, _retry_after(response))
                if response.status_code not in RETRYABLE_STATUSES or attempt >= self.retries:
                    if not response.is_success:
                        raise failure_from_response(response)
                    try:
                        return response.json()
                    except ValueError:
                        raise ApiFailure(
                            f"{url} answered something other than JSON (is this the console's base URL?)"
                        ) from None
            attempt += 1
            self.retried += 1
            self.sleep(wait)

    def whoami(self) -> dict[str, Any]:
        document: dict[str, Any] = self._send("GET", "api/v1/whoami")
        return document

    def roll_out(self, slug: str, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        document: dict[str, Any] = self._send(
            "POST", f"api/v1/actions/{slug}/rollout", json=payload, headers={"Idempotency-Key": idempotency_key}
        )
        return document


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", "0"))
    except ValueError:
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _transport_reason(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    return str(error) or type(error).__name__
