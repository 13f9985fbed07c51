"""The audit timeline: action runs per time bucket split by outcome, with the flow changes that
happened in the same window drawn on the same axis, so "what changed just before the spike" can be
read off one picture.

Runs are counted in one grouped query. A bucket is the run's UTC hour (`TruncHour`) plus its
minute divided by the bucket size; every allowed size divides an hour, so the same integer
arithmetic gives clock-aligned buckets on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, IntegerField, Q, Value
from django.db.models.functions import Cast, ExtractMinute, TruncHour
from django.http import QueryDict
from django.urls import reverse
from django.utils.http import urlencode

from audit_app.models import AuditEvent
from audit_app.queries import parse_time_range
from audit_app.reading import settle_before_reading
from core.http import parse_count
from flows_app.binding_diff import FieldChange, event_changes
from flows_app.models import ActionExecution
from tenants.models import Tenant

BUCKET_MINUTES = (1, 5, 10, 60)
DEFAULT_BUCKET_MINUTES = 10
DEFAULT_WINDOW = timedelta(hours=48)
# More bars than this would be thinner than a pixel at 1280 px; a coarser bucket is used instead.
MAX_BUCKETS = 600
MAX_CHANGES = 200
# A bucket needs this many runs, and at least the average of busy buckets, before its block rate
# says anything: otherwise one blocked run in a quiet bucket outranks a real spike.
MIN_RUNS_FOR_RATE = 5
TOP_BUCKETS = 5
# Changes this long before a bucket count as "just before" it.
LOOKBACK = timedelta(hours=1)

OUTCOMES = [
    ("continue", "Continue"),
    ("block", "Block"),
    ("demand_mfa", "Demand MFA"),
    ("redirect", "Redirect"),
    ("error", "Error"),
]
CHANGE_TYPES = {
    "flow.action_attached": "attached",
    "flow.action_detached": "detached",
    "flow.action_updated": "updated",
    "flow.action_published": "published",
    "flow.enabled": "enabled",
    "flow.disabled": "disabled",
}

# How each kind of change marker's line is drawn, for the legend.
MARKER_STYLES = [
    ("attached", "solid"),
    ("updated", "dashed"),
    ("detached", "dotted"),
    ("published", "dash-dot"),
    ("enabled", "thick"),
    ("disabled", "thick dashed"),
]

# SVG geometry, in viewBox units.
WIDTH, HEIGHT = 1000, 290
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 48, 990, 56, 260
FLAG_ROWS = (14, 30, 46)
FLAG_CHAR_WIDTH = 6.2


def floor_to_bucket(moment: datetime, minutes: int) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


@dataclass(frozen=True)
class TimelineWindow:
    """The window, bucket size and flow asked for in the query string (defaults for what is missing
    or wrong; what was wrong is kept in `problems` and what was adjusted in `notices`)."""

    since: datetime
    until: datetime
    bucket_minutes: int = DEFAULT_BUCKET_MINUTES
    flow: str = ""
    since_text: str = ""
    until_text: str = ""
    problems: list[dict[str, str]] = field(default_factory=list, compare=False)
    notices: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def from_params(cls, params: QueryDict, now: datetime) -> TimelineWindow:
        problems: list[dict[str, str]] = []
        notices: list[str] = []
        moments = parse_time_range(params, problems)
        until = moments["until"] or now.astimezone(UTC)
        since = moments["since"] or until - DEFAULT_WINDOW
        if since >= until:
            problems.append({"field": "since", "message": "Since must be before until."})
            since = until - DEFAULT_WINDOW
        bucket_text = params.get("bucket", "").strip()
        bucket = DEFAULT_BUCKET_MINUTES
        if bucket_text:
            chosen = parse_count(bucket_text)
            if chosen in BUCKET_MINUTES:
                bucket = chosen
            else:
                problems.append({"field": "bucket", "message": "Choose 1, 5, 10 or 60 minutes."})
        wanted = bucket
        while bucket != BUCKET_MINUTES[-1] and (until - since) / timedelta(minutes=bucket) > MAX_BUCKETS:
            bucket = BUCKET_MINUTES[BUCKET_MINUTES.index(bucket) + 1]
        if bucket != wanted:
            notices.append(f"{wanted}-minute buckets would draw too many bars; showing {bucket}-minute buckets.")
        if (until - since) / timedelta(minutes=bucket) > MAX_BUCKETS:
            since = until - timedelta(minutes=bucket * MAX_BUCKETS)
            notices.append(f"The window was shortened to the last {MAX_BUCKETS * bucket // 60 // 24} days.")
        return cls(
            since=since,
            until=until,
            bucket_minutes=bucket,
            flow=params.get("flow", "").strip(),
            since_text=params.get("since", "").strip(),
            until_text=params.get("until", "").strip(),
            problems=problems,
            notices=notices,
        )

    @property
    def bucket(self) -> timedelta:
        return timedelta(minutes=self.bucket_minutes)

    def bucket_starts(self) -> list[datetime]:
        starts = []
        moment = floor_to_bucket(self.since, self.bucket_minutes)
        while moment < self.until:
            starts.append(moment)
            moment += self.bucket
        return starts


def count_runs(tenant: Tenant, window: TimelineWindow) -> dict[datetime, dict[str, int]]:
    """Runs per bucket start and outcome, in one grouped query."""
    runs = ActionExecution.objects.filter(
        tenant=tenant,
        occurred_at__gte=window.since,
        occurred_at__lt=window.until,
        outcome__in=[key for key, _ in OUTCOMES],
    )
    if window.flow:
        runs = runs.filter(flow__slug=window.flow)
    rows = (
        runs.order_by()
        .annotate(
            hour=TruncHour("occurred_at", tzinfo=UTC),
            # Cast first: PostgreSQL's EXTRACT is numeric, and int / int is integer division.
            slot=Cast(ExtractMinute("occurred_at", tzinfo=UTC), IntegerField()) / Value(window.bucket_minutes),
        )
        .values("hour", "slot", "outcome")
        .annotate(runs=Count("id"))
    )
    counts: dict[datetime, dict[str, int]] = {}
    for row in rows:
        start = row["hour"].astimezone(UTC) + timedelta(minutes=int(row["slot"]) * window.bucket_minutes)
        per_outcome = counts.setdefault(start, {})
        per_outcome[row["outcome"]] = per_outcome.get(row["outcome"], 0) + row["runs"]
    return counts


def change_events(tenant: Tenant, window: TimelineWindow) -> list[AuditEvent]:
    """Binding and publishing events in the window, oldest first. With a flow, that flow's binding
    changes; publishing events have no flow and are always shown."""
    events = AuditEvent.objects.for_tenant(tenant).filter(
        type__in=list(CHANGE_TYPES), occurred_at__gte=window.since, occurred_at__lt=window.until
    )
    if window.flow:
        events = events.filter(Q(flow_slug=window.flow) | Q(type="flow.action_published"))
    return list(events.order_by("occurred_at", "id")[:MAX_CHANGES])


@dataclass(frozen=True)
class Segment:
    outcome: str
    label: str
    runs: int
    y: str
    height: str
    log_url: str  # the runs of this outcome in the bucket


@dataclass(frozen=True)
class Bar:
    start: datetime
    end: datetime
    counts: dict[str, int]
    total: int
    x: str
    width: str
    segments: list[Segment]
    title: str
    log_url: str

    @property
    def blocked(self) -> int:
        return self.counts.get("block", 0)

    @property
    def block_rate(self) -> float:
        return self.blocked / self.total if self.total else 0.0

    @property
    def block_percent(self) -> int:
        return round(self.block_rate * 100)

    @property
    def blocked_url(self) -> str:
        return next((segment.log_url for segment in self.segments if segment.outcome == "block"), self.log_url)


@dataclass(frozen=True)
class Marker:
    event: AuditEvent
    verb: str
    x: str
    flag_x: str
    flag_y: int
    text_x: str
    flag_width: str
    label: str
    title: str
    url: str
    changes: list[FieldChange]  # what a binding's update changed, setting by setting


@dataclass(frozen=True)
class Tick:
    position: str
    label: str


@dataclass(frozen=True)
class TopBucket:
    bar: Bar
    changes_before: list[Marker]


@dataclass(frozen=True)
class Timeline:
    window: TimelineWindow
    bars: list[Bar]
    markers: list[Marker]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    top_buckets: list[TopBucket]
    total_runs: int
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PLOT_LEFT
    plot_right: int = PLOT_RIGHT
    plot_top: int = PLOT_TOP
    plot_bottom: int = PLOT_BOTTOM
    plot_height: int = PLOT_BOTTOM - PLOT_TOP


def _num(value: float) -> str:
    return f"{value:.1f}"


def _nice_ceiling(value: int) -> int:
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _x_ticks(start: datetime, end: datetime, to_x: Any) -> list[Tick]:
    span = end - start
    steps = [timedelta(minutes=m) for m in (10, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)]
    step = next((s for s in steps if span / s <= 10), steps[-1])
    # Start on a multiple of the step (capped at a day) after the start.
    step_minutes = min(int(step / timedelta(minutes=1)), 1440)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes_in = math.ceil((start - midnight) / timedelta(minutes=step_minutes)) * step_minutes
    moment = midnight + timedelta(minutes=minutes_in)
    ticks = []
    while moment <= end:
        label = moment.strftime("%d %b %H:%M") if moment.hour == 0 and moment.minute == 0 else moment.strftime("%H:%M")
        ticks.append(Tick(_num(to_x(moment)), label))
        moment += step
    return ticks


def _log_url(tenant: Tenant, window: TimelineWindow, start: datetime, end: datetime, outcome: str = "") -> str:
    """The audit log listing the bucket's runs (of one outcome when given): exactly the runs the
    bar counts. The log reads until inclusively and a bucket ends before its `end`, so the link
    stops a millisecond before it (a datetime-local input holds milliseconds, no finer)."""
    last = end - timedelta(milliseconds=1)
    pairs = [
        ("type", "flow.action_executed"),
        ("since", start.strftime("%Y-%m-%dT%H:%M:%S")),
        ("until", last.strftime("%Y-%m-%dT%H:%M:%S.") + f"{last.microsecond // 1000:03d}"),
    ]
    if window.flow:
        pairs.append(("flow", window.flow))
    if outcome:
        pairs.append(("outcome", outcome))
    return reverse("audit:log", args=[tenant.slug]) + "?" + urlencode(pairs)


def _bars(tenant: Tenant, window: TimelineWindow, counts: dict[datetime, dict[str, int]], to_x: Any) -> list[Bar]:
    starts = window.bucket_starts()
    top = _nice_ceiling(max((sum(c.values()) for c in counts.values()), default=0))
    scale = (PLOT_BOTTOM - PLOT_TOP) / top
    slot_width = (PLOT_RIGHT - PLOT_LEFT) / max(len(starts), 1)
    bar_width = slot_width - 1 if slot_width > 3 else slot_width
    bars = []
    for start in starts:
        end = start + window.bucket
        per_outcome = counts.get(start, {})
        total = sum(per_outcome.values())
        segments, y = [], float(PLOT_BOTTOM)
        for key, label in OUTCOMES:
            runs = per_outcome.get(key, 0)
            if runs:
                height = runs * scale
                y -= height
                segment_url = _log_url(tenant, window, start, end, key)
                segments.append(Segment(key, label, runs, _num(y), _num(height), segment_url))
        breakdown = ", ".join(f"{label} {per_outcome.get(key, 0)}" for key, label in OUTCOMES)
        title = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC: {total} runs ({breakdown})"
        bars.append(
            Bar(
                start=start,
                end=end,
                counts=per_outcome,
                total=total,
                x=_num(to_x(start)),
                width=_num(bar_width),
                segments=segments,
                title=title,
                log_url=_log_url(tenant, window, start, end),
            )
        )
    return bars


def _markers(tenant: Tenant, events: list[AuditEvent], to_x: Any) -> list[Marker]:
    markers = []
    for index, event in enumerate(events):
        verb = CHANGE_TYPES[event.type]
        # A flow switched on or off is named by the flow; everything else by its action.
        label = f"{verb} {event.action_slug or f'flow {event.flow_slug}'}"
        x = to_x(event.occurred_at)
        flag_width = len(label) * FLAG_CHAR_WIDTH + 8
        # Flags point right unless they would leave the chart.
        flag_x = x if x + flag_width <= PLOT_RIGHT else x - flag_width
        who = event.actor_name or event.actor_kind
        title = (
            f"{event.occurred_at:%Y-%m-%d %H:%M:%S} UTC: {event.type} {event.action_slug or event.flow_slug} by {who}"
        )
        markers.append(
            Marker(
                event=event,
                verb=verb,
                x=_num(x),
                flag_x=_num(flag_x),
                flag_y=FLAG_ROWS[index % len(FLAG_ROWS)],
                text_x=_num(flag_x + 4),
                flag_width=_num(flag_width),
                label=label,
                title=title,
                url=reverse("audit:detail", args=[tenant.slug, event.pk]),
                changes=event_changes(event.before, event.after),
            )
        )
    return markers


def _top_buckets(bars: list[Bar], markers: list[Marker]) -> list[TopBucket]:
    busy = [bar.total for bar in bars if bar.total]
    least = max(MIN_RUNS_FOR_RATE, sum(busy) / len(busy) if busy else 0)
    rated = [bar for bar in bars if bar.total >= least and bar.blocked]
    rated.sort(key=lambda bar: (-bar.block_rate, -bar.blocked, bar.start))
    return [
        TopBucket(bar, [m for m in markers if bar.start - LOOKBACK <= m.event.occurred_at < bar.end])
        for bar in rated[:TOP_BUCKETS]
    ]


def build_timeline(tenant: Tenant | None, window: TimelineWindow) -> Timeline:
    """The chart and tables for `window`; with no tenant (an operator who may not read the audit
    history) an empty chart. Two queries: the runs and the changes (after settling pending runs)."""
    if tenant:
        settle_before_reading(tenant)
    counts = count_runs(tenant, window) if tenant else {}
    events = change_events(tenant, window) if tenant else []
    starts = window.bucket_starts()
    chart_start, chart_end = starts[0], starts[-1] + window.bucket
    span = (chart_end - chart_start).total_seconds()

    def to_x(moment: datetime) -> float:
        return PLOT_LEFT + (moment - chart_start).total_seconds() / span * (PLOT_RIGHT - PLOT_LEFT)

    top = _nice_ceiling(max((sum(c.values()) for c in counts.values()), default=0))
    y_ticks = [
        Tick(_num(PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * fraction), str(round(top * fraction)))
        for fraction in (0, 0.5, 1)
    ]
    bars = _bars(tenant, window, counts, to_x) if tenant else []
    markers = _markers(tenant, events, to_x) if tenant else []
    return Timeline(
        window=window,
        bars=bars,
        markers=markers,
        x_ticks=_x_ticks(chart_start, chart_end, to_x),
        y_ticks=y_ticks,
        top_buckets=_top_buckets(bars, markers),
        total_runs=sum(bar.total for bar in bars),
    )
