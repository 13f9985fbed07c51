"""`/healthz` and `/readyz` for load balancers and orchestrators: no authentication, nothing leaked.

They are answered by a middleware at the very front, before the host check, the HTTPS redirect
and sessions: a load balancer probes an app server by its own address over plain HTTP, which
ALLOWED_HOSTS and SECURE_SSL_REDIRECT would turn into a 400 or a redirect, and a probe must not
create sessions or audit entries. The answers name what was checked and nothing else (no
versions, hosts or error text).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from actions_app.runtime import execute_action

logger = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
# The smallest action there is: answering it proves a sandbox worker is up and serving.
_PROBE_ACTION = 'exports.execute = async function () { return { kind: "continue" }; };'
_PROBE_INPUT = {"trigger": "login.post-login", "user": {}, "request": {}, "state": {}, "context": {}}
_PROBE_TIMEOUT_MS = 500


def _database_ready() -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _cache_ready() -> bool:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    answered = cache.get(key) == "1"
    cache.delete(key)
    return answered


def _sandbox_ready() -> bool:
    result = execute_action(
        isolate_key="platform:readyz",
        compiled_js=_PROBE_ACTION,
        action_input=_PROBE_INPUT,
        timeout_ms=_PROBE_TIMEOUT_MS,
    )
    return result.error is None


READINESS_CHECKS: dict[str, Callable[[], bool]] = {
    "database": _database_ready,
    "cache": _cache_ready,
    "sandbox": _sandbox_ready,
}


def readiness() -> dict[str, bool]:
    """Each dependency a request needs, and whether it answered now."""
    outcome = {}
    for name, check in READINESS_CHECKS.items():
        try:
            outcome[name] = check()
        except Exception:
            # Logged here for the operator; the probe's answer says only which check failed.
            logger.exception("readiness check %s failed", name)
            outcome[name] = False
    return outcome


def _probe_answer(body: dict[str, object], status: int) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


class HealthProbeMiddleware:
    """Answers GET/HEAD /healthz (the process serves requests) and /readyz (and can do its work)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path not in (LIVENESS_PATH, READINESS_PATH):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = _probe_answer({"status": "method not allowed"}, 405)
            response["Allow"] = "GET, HEAD"
            return response
        if request.path == LIVENESS_PATH:
            return _probe_answer({"status": "alive"}, 200)
        checks = readiness()
        ready = all(checks.values())
        states = {name: "ok" if answered else "failing" for name, answered in checks.items()}
        body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": states}
        return _probe_answer(body, 200 if ready else 503)
