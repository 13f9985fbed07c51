"""Streaming exports of the filtered audit log (CSV and JSON Lines), row by row from the database."""

from __future__ import annotations

import bisect
import csv
import json
import unicodedata
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from audit_app.models import AuditEvent, AuditEventQuerySet

CHUNK_SIZE = 2000
CSV_COLUMNS = [
    "id",
    "occurred_at",
    "type",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action_slug",
    "action_version",
    "flow_slug",
    "flow_revision",
    "trigger",
    "target",
    "transaction_id",
    "ip",
    "user_agent",
    "request_id",
    "before",
    "after",
]
# A cell starting with one of these is a formula to a spreadsheet; actor names and user agents
# come from outside, so such cells are prefixed with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Spreadsheets also fold look-alikes to ASCII and drop or trim what does not show, so a formula
# sign counts after leading spaces and invisible characters (zero-width space, BOM, direction
# marks, Hangul fillers, variation selectors, the braille blank) and in any form that NFKC folds
# to it (fullwidth ＝＋－＠, small ﹦﹢﹣﹫).
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
# Drawn as nothing whatever their category (many are letters or marks): Unicode's
# Default_Ignorable_Code_Point (DerivedCoreProperties.txt; unassigned ones included, as Unicode
# reserves them for this) and U+2800 BRAILLE PATTERN BLANK, which shows as a space. Inclusive.
_BLANK_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_BLANK_STARTS = [first for first, _ in _BLANK_RANGES]


def utc_iso(event: AuditEvent) -> str:
    return event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_as_dict(event: AuditEvent) -> dict[str, Any]:
    """An event in the contract's shape (§9), as the API and the JSON Lines export give it."""
    return {
        "id": event.pk,
        "occurred_at": utc_iso(event),
        "type": event.type,
        "actor": {"kind": event.actor_kind, "id": event.actor_id, "name": event.actor_name},
        "subject": {
            "action": event.action_slug or None,
            "version": event.action_version or None,
            "flow": event.flow_slug or None,
            "revision": event.flow_revision,
            "trigger": event.trigger or None,
            "target": event.target or None,
        },
        "before": event.before,
        "after": event.after,
        "request": {"ip": event.ip, "user_agent": event.user_agent, "request_id": event.request_id},
        "transaction_id": event.transaction_id or None,
    }


class _Echo:
    """A file-like object whose write returns the line, so csv.writer feeds a generator."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return "'" + text if _starts_like_a_formula(text) else text


def _starts_like_a_formula(text: str) -> bool:
    if text.startswith(FORMULA_STARTS):
        return True
    for char in text:
        if char.isascii() and char.isprintable() and not char.isspace():
            return char in "=+-@"  # the common case, without Unicode tables
        if char.isspace() or _shows_as_nothing(char) or unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            continue
        return unicodedata.normalize("NFKC", char).startswith(FORMULA_STARTS)
    return False


def _shows_as_nothing(char: str) -> bool:
    index = bisect.bisect_right(_BLANK_STARTS, ord(char)) - 1
    return index >= 0 and ord(char) <= _BLANK_RANGES[index][1]


def csv_lines(events: AuditEventQuerySet) -> Iterator[str]:
    """The CSV export: a header, then one line per event, fetched CHUNK_SIZE rows at a time."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=CHUNK_SIZE):
        # Every column is the model field of that name, but the time, written as UTC ISO 8601.
        values = {column: getattr(event, column) for column in CSV_COLUMNS}
        values["occurred_at"] = utc_iso(event)
        yield writer.writerow([_csv_cell(values[column]) for column in CSV_COLUMNS])


def jsonl_lines(events: AuditEventQuerySet) -> Iterator[str]:
    """The JSON Lines export: one event per line in the API's shape."""
    for event in events.iterator(chunk_size=CHUNK_SIZE):
        yield json.dumps(event_as_dict(event), ensure_ascii=False) + "\n"
