"""Reading the audit log: filters and keyset pages, shared by the page, the exports and the API.

Pages are keyset pages on (occurred_at, id) descending. A cursor names the row a page starts after
(or before, for "newer"), so events written while someone pages never shift the next page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q
from django.http import QueryDict
from django.utils.http import urlencode

from audit_app.models import EVENT_TYPES, AuditEvent, AuditEventQuerySet

OUTCOMES = ["continue", "block", "demand_mfa", "redirect", "error"]
OLDER = "older"
NEWER = "newer"


class InvalidAuditQuery(ValueError):
    """A filter or cursor that cannot be understood; `problems` is a list of {field, message}."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Cursor:
    """A position in the log: the (occurred_at, id) of a row, and which way to read from it."""

    occurred_at: datetime
    event_id: int
    direction: str = OLDER

    def encode(self) -> str:
        raw = json.dumps([self.occurred_at.isoformat(), self.event_id, self.direction], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor an `encode` produced, or InvalidAuditQuery for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            when, event_id, direction = json.loads(raw)
            occurred_at = datetime.fromisoformat(when)
            if occurred_at.tzinfo is None or not isinstance(event_id, int) or direction not in (OLDER, NEWER):
                raise ValueError(token)
            # In UTC here, so a moment at the edge of the calendar (year 1 at +14:00) is refused now
            # rather than overflowing when the database adapter converts it.
            occurred_at = occurred_at.astimezone(UTC)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError, RecursionError):
            raise InvalidAuditQuery([{"field": "cursor", "message": "This cursor is not valid."}]) from None
        return cls(occurred_at, event_id, direction)

    @classmethod
    def after(cls, event: AuditEvent, direction: str) -> Cursor:
        return cls(event.occurred_at, event.pk, direction)


def parse_time_range(params: QueryDict, problems: list[dict[str, str]]) -> dict[str, datetime | None]:
    """The `since` and `until` parameters (None where empty); a bad one adds its problem to
    `problems` and reads as None, so the page can show it next to its field."""
    moments: dict[str, datetime | None] = {"since": None, "until": None}
    for name in moments:
        text = params.get(name, "").strip()
        if text:
            try:
                moments[name] = parse_datetime_utc(text, name)
            except InvalidAuditQuery as invalid:
                problems += invalid.problems
    return moments


def parse_datetime_utc(value: str, field_name: str) -> datetime:
    """An ISO 8601 date-time (a datetime-local input's value, or with an offset); naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved past the calendar's edge
        raise InvalidAuditQuery(
            [{"field": field_name, "message": "Enter a date and time like 2025-01-31T14:30 (UTC)."}]
        ) from None


@dataclass(frozen=True)
class AuditQuery:
    """The filters of the audit log, read from a URL's query string."""

    types: tuple[str, ...] = ()
    action: str = ""
    flow: str = ""
    actor: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""
    # The raw text of since/until, so the form shows what the user typed even when it was invalid.
    since_text: str = ""
    until_text: str = ""
    problems: list[dict[str, str]] = field(default_factory=list, compare=False)

    @classmethod
    def from_params(cls, params: QueryDict) -> AuditQuery:
        """Read the filters; problems (unknown type, bad date-time) are kept, not raised, so a page
        can show them next to the field. Call `raise_problems` where they must refuse the request."""
        problems: list[dict[str, str]] = []
        types = tuple(dict.fromkeys(t for t in params.getlist("type") if t))
        for unknown in [t for t in types if t not in EVENT_TYPES]:
            problems.append({"field": "type", "message": f"Unknown event type {unknown!r}."})
        outcome = params.get("outcome", "").strip()
        if outcome and outcome not in OUTCOMES:
            problems.append(
                {
                    "field": "outcome",
                    "message": f"Unknown outcome {outcome[:40]!r}: choose one of {', '.join(OUTCOMES)}.",
                }
            )
            outcome = ""
        moments = parse_time_range(params, problems)
        return cls(
            types=tuple(t for t in types if t in EVENT_TYPES),
            action=params.get("action", "").strip(),
            flow=params.get("flow", "").strip(),
            actor=params.get("actor", "").strip(),
            outcome=outcome,
            since=moments["since"],
            until=moments["until"],
            q=params.get("q", "").strip(),
            since_text=params.get("since", "").strip(),
            until_text=params.get("until", "").strip(),
            problems=problems,
        )

    def raise_problems(self) -> None:
        if self.problems:
            raise InvalidAuditQuery(self.problems)

    @property
    def is_filtered(self) -> bool:
        return bool(self.as_params())

    def as_params(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (type repeats), without empty ones."""
        pairs = [("type", t) for t in self.types]
        for name in ("action", "flow", "actor", "outcome"):
            if getattr(self, name):
                pairs.append((name, getattr(self, name)))
        if self.since_text:
            pairs.append(("since", self.since_text))
        if self.until_text:
            pairs.append(("until", self.until_text))
        if self.q:
            pairs.append(("q", self.q))
        return pairs

    def query_string(self, cursor: Cursor | None = None) -> str:
        pairs = self.as_params() + ([("cursor", cursor.encode())] if cursor else [])
        return urlencode(pairs)

    def apply(self, events: AuditEventQuerySet) -> AuditEventQuerySet:
        """`events` narrowed by every filter; the caller has already scoped them to one tenant."""
        if self.types:
            events = events.filter(type__in=self.types)
        if self.action:
            events = events.filter(action_slug=self.action)
        if self.flow:
            events = events.filter(flow_slug=self.flow)
        if self.actor:
            events = events.filter(Q(actor_name__icontains=self.actor) | Q(actor_id=self.actor))
        if self.outcome:
            # A JSON key lookup, so the same filter runs on SQLite and PostgreSQL.
            events = events.filter(type="flow.action_executed", after__outcome=self.outcome)
        if self.since:
            events = events.filter(occurred_at__gte=self.since)
        if self.until:
            events = events.filter(occurred_at__lte=self.until)
        if self.q:
            text = Q()
            for name in ("action_slug", "flow_slug", "actor_name", "target", "transaction_id", "request_id"):
                text |= Q(**{f"{name}__icontains": self.q})
            events = events.filter(text)
        return events


@dataclass(frozen=True)
class KeysetPage:
    """One page of events, newest first, with cursors to the pages either side (None at an end)."""

    events: list[AuditEvent]
    newer: Cursor | None
    older: Cursor | None


def _beyond(events: AuditEventQuerySet, cursor: Cursor, *, inclusive: bool = False) -> AuditEventQuerySet:
    """Events past the cursor's row in its direction (the row itself too when `inclusive`)."""
    when, pk = cursor.occurred_at, cursor.event_id
    # The plain bound on occurred_at repeats part of the OR on purpose: the database can start
    # an index scan there, where the OR alone makes it walk (and discard) every row before the
    # cursor — 10,000 rows deep, that is most of the page's time (bench/audit_pages.py).
    if cursor.direction == OLDER:
        same_time = Q(occurred_at=when, id__lte=pk) if inclusive else Q(occurred_at=when, id__lt=pk)
        return events.filter(Q(occurred_at__lt=when) | same_time, occurred_at__lte=when).order_by("-occurred_at", "-id")
    same_time = Q(occurred_at=when, id__gte=pk) if inclusive else Q(occurred_at=when, id__gt=pk)
    return events.filter(Q(occurred_at__gt=when) | same_time, occurred_at__gte=when).order_by("occurred_at", "id")


def keyset_page(events: AuditEventQuerySet, cursor: Cursor | None, size: int) -> KeysetPage:
    """The page of `events` that `cursor` points at (the newest page without one), in two queries
    at most: the page itself (one row more, to know whether another follows) and, when paging, a
    check that something lies the other way."""
    if cursor is None:
        rows = list(events.order_by("-occurred_at", "-id")[: size + 1])
        has_more, came_from_other_side = len(rows) > size, False
    else:
        rows = list(_beyond(events, cursor)[: size + 1])
        has_more = len(rows) > size
        back = Cursor(cursor.occurred_at, cursor.event_id, NEWER if cursor.direction == OLDER else OLDER)
        # The cursor's own row belongs to the page we came from, so it counts as the other side.
        came_from_other_side = _beyond(events, back, inclusive=True).exists()
    rows = rows[:size]
    if cursor is not None and cursor.direction == NEWER:
        rows.reverse()
        has_newer, has_older = has_more, came_from_other_side
    else:
        has_newer, has_older = came_from_other_side, has_more
    if not rows:
        # Paged past an end: offer only the way back.
        if cursor is None or not came_from_other_side:
            return KeysetPage([], None, None)
        way_back = Cursor(cursor.occurred_at, cursor.event_id, NEWER if cursor.direction == OLDER else OLDER)
        return KeysetPage([], *((way_back, None) if way_back.direction == NEWER else (None, way_back)))
    return KeysetPage(
        events=rows,
        newer=Cursor.after(rows[0], NEWER) if has_newer else None,
        older=Cursor.after(rows[-1], OLDER) if has_older else None,
    )


def event_diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """Per-key rows comparing before and after (values arrive already masked by the writers).
    Values that are not objects are compared as a whole, under the key "value"."""
    if before is None and after is None:
        return []
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before is None and isinstance(after, dict):
            before = {}
        elif after is None and isinstance(before, dict):
            after = {}
        else:
            before, after = {"value": before}, {"value": after}
    rows = []
    for key in list(dict.fromkeys([*before, *after])):
        old, new = before.get(key), after.get(key)
        if key not in before:
            change = "added"
        elif key not in after:
            change = "removed"
        else:
            change = "changed" if old != new else "same"
        rows.append(
            {"key": key, "before": old, "after": new, "change": change, "had": key in before, "has": key in after}
        )
    return rows
