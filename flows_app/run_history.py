"""Run histories, per action and per flow: their filters and their keyset pages.

A page holds PAGE_SIZE rows newest first; its cursor names the last row shown (its sort key), so
the next page starts right after it however many runs are recorded meanwhile: nothing shifts,
repeats or goes missing between pages, and every page costs the same queries. Cursors are the
API's opaque ones (core.api_paging).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.http import Http404, QueryDict
from django.utils.http import urlencode

from actions_app.models import Action
from audit_app.queries import InvalidAuditQuery, parse_datetime_utc
from core.api_errors import ApiError
from core.api_paging import decode_cursor, encode_cursor
from core.http import parse_count
from flows_app.models import ActionExecution, Flow
from flows_app.run_records import settle_for_reading
from tenants.access import TenantAccess, visible

PAGE_SIZE = 50
OUTCOMES = ["continue", "block", "demand_mfa", "redirect", "error"]
# The outcome a flow run shows when its executions disagree, most telling first.
OUTCOME_PRIORITY = ("block", "error", "redirect", "demand_mfa")
# Every filter a history reads, in the order its form shows them.
FILTER_NAMES = ("outcome", "version", "revision", "trigger", "since", "until")


def executions_visible_to(access: TenantAccess, action: Action) -> QuerySet[ActionExecution]:
    """Executions of `action` in the tenant, limited to flows the operator may see (runs still
    pending are settled first)."""
    settle_for_reading(access.tenant)
    flows = visible(access, "view_flow", Flow.objects.all())
    return ActionExecution.objects.filter(tenant=access.tenant, action=action, flow__in=flows)


def visible_execution_or_404(access: TenantAccess, action: Action, execution_id: str) -> ActionExecution:
    """The execution of `action` named in a URL, with its flow and action, if the operator may
    see it; 404 for anything else (parse_count: an id past bigint used to overflow in the query)."""
    pk = parse_count(execution_id)
    found = executions_visible_to(access, action).select_related("flow", "action").filter(pk=pk).first() if pk else None
    if found is None:
        raise Http404("No such execution")
    return found


@dataclass(frozen=True)
class RunFilters:
    """The filters of a run history as typed (`typed`, shown back in the form even when wrong)
    and as understood; `problems` says, per field, what could not be understood."""

    typed: dict[str, str]
    outcome: str = ""
    version: str = ""
    revision: int | None = None
    trigger: str = ""
    since: datetime | None = None
    until: datetime | None = None
    problems: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_params(
        cls, params: QueryDict, *, triggers: list[str], versions: list[str] | None = None, by_revision: bool = False
    ) -> RunFilters:
        """Read the filters: by version when `versions` (an action's) are given, by flow revision
        when `by_revision`. Nothing wrong is dropped silently: it becomes a problem."""
        # Only the filters this history has: a flow's is not filtered by an action's version.
        names = [
            n for n in FILTER_NAMES if (n != "version" or versions is not None) and (n != "revision" or by_revision)
        ]
        typed = {name: params.get(name, "").strip() for name in names}
        problems: list[dict[str, str]] = []
        values: dict[str, Any] = {}

        def refuse(name: str, message: str) -> None:
            problems.append({"field": name, "message": message})

        if typed["outcome"] and typed["outcome"] not in OUTCOMES:
            refuse("outcome", f"Choose one of {', '.join(OUTCOMES)}.")
        if typed["trigger"] and typed["trigger"] not in triggers:
            refuse("trigger", f"{typed['trigger'][:80]!r} is not a trigger slot here; choose one of the list.")
        if versions is not None and typed["version"] not in ("", *versions):
            refuse("version", f"This action has no version {typed['version'][:40]!r}.")
        if by_revision and typed["revision"]:
            values["revision"] = parse_count(typed["revision"].removeprefix("r"), max_digits=9)
            if not values["revision"]:
                refuse("revision", "Enter a revision number such as 5 (or r5).")
        for name in ("since", "until"):
            if typed[name]:
                try:
                    values[name] = parse_datetime_utc(typed[name], name)
                except InvalidAuditQuery as invalid:
                    problems += invalid.problems
        if values.get("since") and values.get("until") and values["since"] > values["until"]:
            refuse("until", "Until must not be before since.")
        return cls(
            typed=typed,
            outcome=typed["outcome"],
            version=typed.get("version", ""),
            revision=values.get("revision"),
            trigger=typed["trigger"],
            since=values.get("since"),
            until=values.get("until"),
            problems=problems,
        )

    def problem(self, name: str) -> str:
        return " ".join(p["message"] for p in self.problems if p["field"] == name)

    @property
    def errors(self) -> dict[str, str]:
        """Each field's problems, for the messages next to the fields."""
        return {name: self.problem(name) for name in (*FILTER_NAMES, "cursor") if self.problem(name)}

    @property
    def is_filtered(self) -> bool:
        return any(self.typed.values())

    def query_string(self, cursor: str | None = None) -> str:
        """The filters as typed, and `cursor`, for a link to another page of the same history."""
        pairs = [(name, value) for name, value in self.typed.items() if value]
        return urlencode(pairs + ([("cursor", cursor)] if cursor else []))

    def apply(self, executions: QuerySet[ActionExecution]) -> QuerySet[ActionExecution]:
        """`executions` narrowed by every filter that applies to single executions."""
        if self.version:
            executions = executions.filter(action_version=self.version)
        if self.revision is not None:
            executions = executions.filter(revision_number=self.revision)
        if self.trigger:
            executions = executions.filter(trigger=self.trigger)
        if self.since:
            executions = executions.filter(occurred_at__gte=self.since)
        if self.until:
            executions = executions.filter(occurred_at__lte=self.until)
        return executions


@dataclass(frozen=True)
class HistoryPage:
    """One page of a history and the cursor of the next (older) one, None on the last page."""

    rows: list[Any]
    next_cursor: str | None
    # The query string of the next page: these filters and its cursor (read_history sets it).
    older_qs: str = ""


class BadCursor(ValueError):
    """A cursor that no page of this history produced; `problems` names the field."""

    def __init__(self) -> None:
        super().__init__("cursor")
        self.problems = [
            {"field": "cursor", "message": "This page link is not valid; start again from the newest runs."}
        ]


def _read_cursor(listing: str, cursor: str, arity: int) -> tuple[datetime, list[str]]:
    """The moment a cursor of `listing` starts after, and the rest of its sort key."""
    try:
        when, *rest = decode_cursor(listing, cursor, arity)
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None:
            raise BadCursor
        # In UTC here: a moment at the calendar's edge overflows now, not in the database adapter.
        return moment.astimezone(UTC), rest
    except (ApiError, ValueError, OverflowError):
        raise BadCursor from None


def execution_page(
    executions: QuerySet[ActionExecution], filters: RunFilters, cursor: str, size: int = PAGE_SIZE
) -> HistoryPage:
    """A page of single executions newest first (an action's history), in one query."""
    executions = filters.apply(executions)
    if filters.outcome:
        executions = executions.filter(outcome=filters.outcome)
    if cursor:
        when, (pk_text,) = _read_cursor("executions", cursor, 2)
        pk = parse_count(pk_text)
        if pk is None:
            raise BadCursor
        # The plain bound repeats part of the OR so the database can start its index scan there.
        executions = executions.filter(Q(occurred_at__lt=when) | Q(occurred_at=when, id__lt=pk), occurred_at__lte=when)
    rows = list(executions.order_by("-occurred_at", "-id")[: size + 1])
    last = rows[size - 1] if len(rows) > size else None
    return HistoryPage(
        rows[:size], encode_cursor("executions", [last.occurred_at.isoformat(), str(last.pk)]) if last else None
    )


def _run_outcome(row: dict[str, Any]) -> str:
    for outcome in OUTCOME_PRIORITY:
        if row[outcome]:
            return outcome
    return "continue"


def _outcome_filter(outcome: str) -> Q:
    """Runs whose shown outcome (see OUTCOME_PRIORITY) is `outcome`, on the grouped counts."""
    if outcome == "continue":
        return Q(**dict.fromkeys(OUTCOME_PRIORITY, 0))
    earlier = OUTCOME_PRIORITY[: OUTCOME_PRIORITY.index(outcome)]
    return Q(**dict.fromkeys(earlier, 0), **{f"{outcome}__gt": 0})


def run_page(
    executions: QuerySet[ActionExecution], filters: RunFilters, cursor: str, size: int = PAGE_SIZE
) -> HistoryPage:
    """A page of a flow's runs, one row per transaction and trigger, newest first, in one query."""
    rows = (
        filters.apply(executions)
        .order_by()
        .values("transaction_id", "trigger")
        .annotate(
            started=Min("occurred_at"),
            executions=Count("id"),
            revision=Max("revision_number"),
            duration=Sum("duration_ms"),
            **{outcome: Count("id", filter=Q(outcome=outcome)) for outcome in OUTCOME_PRIORITY},
        )
    )
    if filters.outcome:
        rows = rows.filter(_outcome_filter(filters.outcome))
    if cursor:
        when, (transaction_id, trigger) = _read_cursor("runs", cursor, 3)
        rows = rows.filter(
            Q(started__lt=when)
            | Q(started=when, transaction_id__lt=transaction_id)
            | Q(started=when, transaction_id=transaction_id, trigger__lt=trigger)
        )
    found = list(rows.order_by("-started", "-transaction_id", "-trigger")[: size + 1])
    last = found[size - 1] if len(found) > size else None
    next_cursor = (
        encode_cursor("runs", [last["started"].isoformat(), last["transaction_id"], last["trigger"]]) if last else None
    )
    return HistoryPage([{**row, "outcome": _run_outcome(row)} for row in found[:size]], next_cursor)


def read_history(
    filters: RunFilters, cursor: str, fetch: Callable[[RunFilters, str], HistoryPage]
) -> tuple[HistoryPage | None, list[dict[str, str]]]:
    """The page `fetch` reads, or, when a filter or the cursor is wrong, no page and what is wrong:
    a history that silently left a filter out would show runs the operator did not ask for."""
    if filters.problems:
        return None, filters.problems
    try:
        page = fetch(filters, cursor.strip())
    except BadCursor as bad:
        return None, bad.problems
    return replace(page, older_qs=filters.query_string(page.next_cursor) if page.next_cursor else ""), []
