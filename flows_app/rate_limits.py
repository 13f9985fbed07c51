"""Fixed-window counters in Django's cache, shared by every app server through Redis.

`cache.add` creates the window's key only if it is absent and `cache.incr` is Redis INCR, so
concurrent requests from several processes each get a distinct count and exactly `limit` of
them are admitted per window. Keys carry the window number, so a new window starts at zero
without anyone having to reset anything.
"""

from __future__ import annotations

import time

from django.core.cache import cache


def window_key(scope: str, window_seconds: int, now: float | None = None) -> str:
    window = int((now if now is not None else time.time()) // window_seconds)
    return f"ratelimit:{scope}:{window_seconds}:{window}"


def count_hit(scope: str, window_seconds: int, now: float | None = None) -> int:
    """Record one request in `scope`'s current window and return how many it has seen."""
    key = window_key(scope, window_seconds, now)
    # Keep the key a little longer than its window so a slow request near the edge still counts.
    cache.add(key, 0, timeout=window_seconds + 5)
    try:
        return cache.incr(key)
    except ValueError:
        # The key expired between add and incr (window edge): start it again.
        cache.add(key, 0, timeout=window_seconds + 5)
        return cache.incr(key)
