"""`/healthz` and `/readyz` for load balancers and orchestrators: no authentication, nothing leaked.

They are answered by a middleware at the very front, before the host check, the HTTPS redirect
and sessions: a load balancer probes an app server by its own address over plain HTTP, which
ALLOWED_HOSTS and SECURE_SSL_REDIRECT would turn into a 400 or a redirect, and a probe must not
create sessions or audit entries. The answers name what was checked and nothing else (no
versions, hosts or error text).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from actions_app.runtime import sandbox_ready

logger = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
# A flood of probes costs one round of checks (a query, a cache round-trip, a look at the sandbox
# workers) per this many seconds in each process.
READINESS_CACHE_SECONDS = 2.0

_readiness_lock = threading.Lock()
_last_readiness: tuple[float, dict[str, bool]] | None = None


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


READINESS_CHECKS: dict[str, Callable[[], bool]] = {
    "database": _database_ready,
    "cache": _cache_ready,
    # A live worker process, not a test execution: that would wait behind a busy pool.
    "sandbox": sandbox_ready,
}


# Sign-ins are answered without Redis (rate-limit bindings fail open or closed by their on_error,
# sessions fall back to the database), and every app server shares the one Redis: taking them all
# out of the load balancer because it is away would turn a degraded minute into an outage. The
# probe still names it, with 200 and "degraded".
DEGRADED_WITHOUT = frozenset({"cache"})


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


def cached_readiness() -> dict[str, bool]:
    """readiness(), reused for READINESS_CACHE_SECONDS. Probes arriving meanwhile wait for the one
    round in progress rather than start their own."""
    global _last_readiness
    with _readiness_lock:
        if _last_readiness is None or time.monotonic() - _last_readiness[0] >= READINESS_CACHE_SECONDS:
            checks = readiness()
            _last_readiness = (time.monotonic(), checks)
        return dict(_last_readiness[1])


def forget_cached_readiness() -> None:
    """The next probe checks afresh."""
    global _last_readiness
    with _readiness_lock:
        _last_readiness = None


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
        checks = cached_readiness()
        states = {name: "ok" if answered else "failing" for name, answered in checks.items()}
        if not all(answered for name, answered in checks.items() if name not in DEGRADED_WITHOUT):
            return _probe_answer({"status": "not ready", "checks": states}, 503)
        return _probe_answer({"status": "ready" if all(checks.values()) else "degraded", "checks": states}, 200)
