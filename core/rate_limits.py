"""Fixed-window counters in Django's cache, shared by every app server through Redis.

On Redis each hit is one INCR (the hit that opens a window also sets its expiry), so concurrent
requests from several processes each get a distinct count and exactly `limit` of them are
admitted per window. Other caches use `cache.add` then `cache.incr`. Keys carry the window
number, so a new window starts at zero without anyone having to reset anything. Used on the
sign-in path (rate-limit templates), by the API's per-token limit and by the security log's guard.

When Redis is down or stalls, a sign-in must still be answered within its slot's budget. So the
counters have their own client with a short timeout (RATE_LIMIT_REDIS_TIMEOUT_MS, 250 ms: an
INCR answers in well under a millisecond, but at 100 ms the fault bench saw counters fail on an
app server short of CPU), and after a failure this process does not try Redis again for
RATE_LIMIT_REDIS_RETRY_SECONDS (1 s): meanwhile every hit fails at once. What a
failure means is the caller's choice (`CountersUnavailable` or a local count): a rate-limit
binding fails like any execution, open or closed by its on_error; the API limit and the security
log guard count in this process instead, which keeps them working at N processes × the limit.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

DEFAULT_REDIS_TIMEOUT_MS = 250
DEFAULT_REDIS_RETRY_SECONDS = 1.0


class CountersUnavailable(Exception):
    """The shared counters could not be reached; the message says why, without addresses."""


# Per process, across threads: until when hits skip Redis, and the reason they are given.
_outage_lock = threading.Lock()
_outage_until = 0.0
_outage_reason = ""
# The stand-in for the shared counters while they are away, bounded like any LocMemCache.
_local_counters = LocMemCache("rate-limits-while-redis-is-away", {"OPTIONS": {"MAX_ENTRIES": 10_000}})


def window_key(scope: str, window_seconds: int, now: float | None = None) -> str:
    window = int((now if now is not None else time.time()) // window_seconds)
    return f"ratelimit:{scope}:{window_seconds}:{window}"


def _counter_client(cache: RedisCache) -> Any:
    """A redis.Redis client for counters with the short timeouts, made once per cache object
    (Django keeps one per thread). Django's own client would take the cache's timeouts, and builds
    a new client for every operation, which costs more than the round-trip itself."""
    client = cache.__dict__.get("_counter_client")
    if client is None:
        timeout_s = int(getattr(settings, "RATE_LIMIT_REDIS_TIMEOUT_MS", DEFAULT_REDIS_TIMEOUT_MS)) / 1000
        # A write client is always on the first server, whatever the key.
        client = cache.__dict__["_counter_client"] = redis.Redis.from_url(
            cache._servers[0],  # type: ignore[attr-defined]
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
    return client


def _redis_hit(cache: RedisCache, key: str, timeout: int) -> int:
    global _outage_until, _outage_reason
    if time.monotonic() < _outage_until:
        raise CountersUnavailable(_outage_reason)
    # One INCR per hit (Django's incr() asks EXISTS first). Django stores ints unpickled, so
    # cache.get() reads the counter too.
    full_key = cache.make_and_validate_key(key)
    client = _counter_client(cache)
    try:
        count = int(client.incr(full_key))
        if count == 1:
            client.expire(full_key, timeout)
    except redis.RedisError as error:
        retry_s = float(getattr(settings, "RATE_LIMIT_REDIS_RETRY_SECONDS", DEFAULT_REDIS_RETRY_SECONDS))
        reason = (
            "the rate-limit counters (Redis) did not answer in time"
            if isinstance(error, redis.TimeoutError)
            else "the rate-limit counters (Redis) cannot be reached"
        )
        with _outage_lock:
            _outage_until, _outage_reason = time.monotonic() + retry_s, reason
        logger.warning("Rate-limit counters unavailable for %.1f s: %r", retry_s, error)
        raise CountersUnavailable(reason) from error
    return count


def _cache_hit(cache: Any, key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key))
    except ValueError:
        # The key expired between add and incr (window edge): start it again.
        cache.add(key, 0, timeout=timeout)
        return int(cache.incr(key))


def count_hit(scope: str, window_seconds: int, now: float | None = None, *, count_locally_if_down: bool = False) -> int:
    """Record one request in `scope`'s current window and return how many it has seen.

    Raises CountersUnavailable when Redis does not answer, unless `count_locally_if_down`: then
    the hit is counted in this process only."""
    key = window_key(scope, window_seconds, now)
    # Keep the key a little longer than its window so a slow request near the edge still counts.
    timeout = window_seconds + 5
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return _cache_hit(cache, key, timeout)
    try:
        return _redis_hit(cache, key, timeout)
    except CountersUnavailable:
        if not count_locally_if_down:
            raise
        return _cache_hit(_local_counters, key, timeout)


def forget_outage() -> None:
    """The next hit tries Redis again (tests; the outage window is otherwise per process)."""
    global _outage_until
    with _outage_lock:
        _outage_until = 0.0
