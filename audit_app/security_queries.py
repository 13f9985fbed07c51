"""Reading the platform security log: filters from the query string and keyset pages.

Rows are only ever appended and `occurred_at` is the time of the insert, so the id orders them by
time; pages are keyset pages on the id (newest first), and rows written while someone pages never
shift the next page.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.http import urlencode

from audit_app.models import SECURITY_EVENT_KINDS, SecurityEvent
from audit_app.queries import parse_time_range
from core.http import parse_count


@dataclass(frozen=True)
class SecurityLogQuery:
    """The security log's filters and page position, read from a URL's query string. Problems are
    kept (with the field they belong to) so the page can show them; the rest of the filter applies."""

    kind: str = ""
    username: str = ""
    ip: str = ""
    since: datetime | None = None
    until: datetime | None = None
    since_text: str = ""
    until_text: str = ""
    before: int | None = None  # show rows older than this id
    after: int | None = None  # show rows newer than this id
    problems: list[dict[str, str]] = field(default_factory=list, compare=False)

    @classmethod
    def from_params(cls, params: QueryDict) -> SecurityLogQuery:
        problems: list[dict[str, str]] = []
        kind = params.get("kind", "").strip()
        if kind and kind not in SECURITY_EVENT_KINDS:
            problems.append({"field": "kind", "message": f"Unknown kind {kind!r}."})
            kind = ""
        ip = params.get("ip", "").strip()
        if ip:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                problems.append({"field": "ip", "message": "Enter one IP address, such as 203.0.113.7 or 2001:db8::1."})
                ip = ""
        moments = parse_time_range(params, problems)
        positions: dict[str, int | None] = {"before": None, "after": None}
        for name in positions:
            text = params.get(name, "").strip()
            if text:
                positions[name] = parse_count(text)
                if positions[name] is None:
                    problems.append({"field": "page", "message": "This page link is not valid; showing the newest."})
        username = params.get("username", "").strip()
        if "\x00" in username:
            # PostgreSQL text cannot hold NUL; no username contains one.
            problems.append({"field": "username", "message": "A username cannot contain a NUL character."})
            username = ""
        return cls(
            kind=kind,
            username=username,
            ip=ip,
            since=moments["since"],
            until=moments["until"],
            since_text=params.get("since", "").strip(),
            until_text=params.get("until", "").strip(),
            before=positions["before"],
            after=None if positions["before"] is not None else positions["after"],
            problems=problems,
        )

    def filter_params(self) -> list[tuple[str, str]]:
        """The filters (not the page position) as query-string pairs, without empty ones."""
        pairs = [(name, getattr(self, name)) for name in ("kind", "username", "ip")]
        pairs += [("since", self.since_text), ("until", self.until_text)]
        return [(name, value) for name, value in pairs if value]

    @property
    def is_filtered(self) -> bool:
        return bool(self.filter_params())

    def query_string(self, **position: int) -> str:
        return urlencode(self.filter_params() + [(name, str(value)) for name, value in position.items()])

    def apply(self, events: QuerySet[SecurityEvent]) -> QuerySet[SecurityEvent]:
        if self.kind:
            events = events.filter(kind=self.kind)
        if self.username:
            events = events.filter(username=self.username)
        if self.ip:
            events = events.filter(ip=self.ip)
        if self.since:
            events = events.filter(occurred_at__gte=self.since)
        if self.until:
            events = events.filter(occurred_at__lte=self.until)
        return events


@dataclass(frozen=True)
class SecurityLogPage:
    """One page, newest first; `newer_than` / `older_than` are the ids to page on from (None at an end)."""

    events: list[SecurityEvent]
    newer_than: int | None
    older_than: int | None


def security_log_page(events: QuerySet[SecurityEvent], query: SecurityLogQuery, size: int) -> SecurityLogPage:
    """The page `query` points at, in two queries at most: the rows (one more, to know whether
    another page follows) and, when paging, whether anything lies the other way."""
    if query.after is not None:
        rows = list(events.filter(id__gt=query.after).order_by("id")[: size + 1])
        has_newer, rows = len(rows) > size, rows[:size][::-1]
        has_older = events.filter(id__lte=query.after).exists()
    else:
        window = events.filter(id__lt=query.before) if query.before is not None else events
        rows = list(window.order_by("-id")[: size + 1])
        has_older, rows = len(rows) > size, rows[:size]
        has_newer = query.before is not None and events.filter(id__gte=query.before).exists()
    if not rows:
        return SecurityLogPage([], None, None)
    return SecurityLogPage(
        events=rows,
        newer_than=rows[0].pk if has_newer else None,
        older_than=rows[-1].pk if has_older else None,
    )
