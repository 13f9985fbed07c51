"""Fixed-window counters in Django's cache, shared by every app server through Redis.

On Redis each hit is one INCR (the hit that opens a window also sets its expiry), so concurrent
requests from several processes each get a distinct count and exactly `limit` of them are
admitted per window. Other caches use `cache.add` then `cache.incr`. Keys carry the window
number, so a new window starts at zero without anyone having to reset anything. Used on the
sign-in path (rate-limit templates), by the API's per-token limit and by the security log's guard.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def window_key(scope: str, window_seconds: int, now: float | None = None) -> str:
    window = int((now if now is not None else time.time()) // window_seconds)
    return f"ratelimit:{scope}:{window_seconds}:{window}"


def _redis_client(cache: RedisCache) -> Any:
    """The cache's redis.Redis client, made once per cache object (Django keeps one per thread):
    Django builds a new one for every operation, which costs more than the round-trip itself."""
    client = cache.__dict__.get("_counter_client")
    if client is None:
        # A write client is always on the first server, whatever the key.
        client = cache.__dict__["_counter_client"] = cache._cache.get_client(None, write=True)  # type: ignore[attr-defined]
    return client


def count_hit(scope: str, window_seconds: int, now: float | None = None) -> int:
    """Record one request in `scope`'s current window and return how many it has seen."""
    key = window_key(scope, window_seconds, now)
    # Keep the key a little longer than its window so a slow request near the edge still counts.
    timeout = window_seconds + 5
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        # One INCR per hit (Django's incr() asks EXISTS first). Django stores ints unpickled, so
        # cache.get() reads the counter too.
        full_key = cache.make_and_validate_key(key)
        client = _redis_client(cache)
        count = int(client.incr(full_key))
        if count == 1:
            client.expire(full_key, timeout)
        return count
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:
        # The key expired between add and incr (window edge): start it again.
        cache.add(key, 0, timeout=timeout)
        return cache.incr(key)
