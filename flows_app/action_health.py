"""24-hour health of actions: runs, block and error rates, duration percentiles, runs per hour.

Counts come from one grouped SQL query (action × hour). Percentiles are computed in Python from
the window's durations fetched in one more query, which works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from flows_app.models import ActionExecution

WINDOW = timedelta(hours=24)
HOURS = 24
SPARK_WIDTH = 96
SPARK_HEIGHT = 20


@dataclass
class ActionHealth:
    """One action's last 24 hours; `hourly` holds 24 run counts, oldest first."""

    runs: int = 0
    blocked: int = 0
    errors: int = 0
    hourly: list[int] = field(default_factory=lambda: [0] * HOURS)
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def block_rate(self) -> float:
        return round(100 * self.blocked / self.runs, 1) if self.runs else 0.0

    @property
    def error_rate(self) -> float:
        return round(100 * self.errors / self.runs, 1) if self.runs else 0.0

    @property
    def peak(self) -> int:
        return max(self.hourly)

    @property
    def sparkline_points(self) -> str:
        """SVG polyline points for the hourly runs, scaled to the sparkline's box."""
        top = self.peak or 1
        step = SPARK_WIDTH / (HOURS - 1)
        return " ".join(
            f"{i * step:.1f},{SPARK_HEIGHT - 1 - (SPARK_HEIGHT - 2) * n / top:.1f}" for i, n in enumerate(self.hourly)
        )


def percentile(sorted_values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def health_for(
    action_ids: Iterable[int], *, now: datetime | None = None, durations: bool = False
) -> dict[int, ActionHealth]:
    """Health of each action id over the 24 hours before `now`: one grouped query, plus one for
    the durations when `durations` is asked for (the percentiles)."""
    ids = list(action_ids)
    health = {action_id: ActionHealth() for action_id in ids}
    if not ids:
        return health
    now = now or timezone.now()
    since = now - WINDOW
    current_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    window = ActionExecution.objects.filter(action_id__in=ids, occurred_at__gt=since, occurred_at__lte=now).order_by()
    grouped = window.values("action_id", hour=TruncHour("occurred_at", tzinfo=UTC)).annotate(
        runs=Count("id"), blocked=Count("id", filter=Q(outcome="block")), errors=Count("id", filter=Q(outcome="error"))
    )
    for row in grouped:
        entry = health[row["action_id"]]
        entry.runs += row["runs"]
        entry.blocked += row["blocked"]
        entry.errors += row["errors"]
        hours_ago = int((current_hour - row["hour"]).total_seconds() // 3600)
        entry.hourly[max(0, HOURS - 1 - hours_ago)] += row["runs"]
    if durations:
        collected: dict[int, list[float]] = {action_id: [] for action_id in ids}
        for action_id, duration in window.values_list("action_id", "duration_ms"):
            collected[action_id].append(duration)
        for action_id, values in collected.items():
            values.sort()
            health[action_id].p50_ms = percentile(values, 50)
            health[action_id].p95_ms = percentile(values, 95)
    return health
