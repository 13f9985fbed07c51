"""One multi-row INSERT for a batch of new model instances, without bulk_create's per-call cost.

A flow run writes a handful of rows to four tables on every sign-in. `QuerySet.bulk_create`
builds its SQL from scratch on every call (field lists, placeholders, per-value preparation
through the compiler) and that bookkeeping cost more than the database work itself. Here the
statement's shape is worked out once per model and database vendor, values are prepared only for
the fields whose database form differs from the Python one (JSON, datetimes, UUIDs, IP
addresses), and the new ids come back through RETURNING, as with bulk_create.

Only for plain models: an auto-incrementing primary key, no multi-table inheritance, no
auto_now fields (defaults are filled when the instance is built), no save() overrides relied on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models

# Fields whose Python value is what the database driver takes as it is (subclasses included).
_PASS_THROUGH = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.FloatField)
_AUTO_KEYS = ("AutoField", "BigAutoField", "SmallAutoField")


@dataclass(frozen=True)
class _Statement:
    head: str
    row_placeholder: str
    tail: str
    attnames: tuple[str, ...]
    preparers: tuple[Callable[[Any], Any] | None, ...]


_statements: dict[tuple[type[models.Model], str], _Statement] = {}


def _statement_for(model: type[models.Model], alias: str) -> _Statement:
    connection = connections[alias]
    key = (model, connection.vendor)
    found = _statements.get(key)
    if found is not None:
        return found
    meta = model._meta
    if meta.pk is None or meta.pk.get_internal_type() not in _AUTO_KEYS or meta.parents:
        raise TypeError(f"{meta.label}: insert_rows needs a plain model with an auto-incrementing key")
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    if any(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) for f in fields):
        raise TypeError(f"{meta.label}: insert_rows does not fill auto_now fields")
    quote = connection.ops.quote_name
    preparers: list[Callable[[Any], Any] | None] = []
    placeholders = []
    for field in fields:
        plain = isinstance(field, _PASS_THROUGH) or (
            isinstance(field, models.ForeignKey) and field.target_field.get_internal_type() in _AUTO_KEYS
        )
        preparers.append(None if plain else _preparer(field, alias))
        placeholders.append("%s")
    # Only model metadata goes into the SQL text; every value is a parameter.
    statement = _Statement(
        head=f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES ",  # noqa: S608
        row_placeholder=f"({', '.join(placeholders)})",
        tail=f" RETURNING {quote(meta.pk.column)}",
        attnames=tuple(f.attname for f in fields),
        preparers=tuple(preparers),
    )
    _statements[key] = statement
    return statement


def _preparer(field: models.Field[Any, Any], alias: str) -> Callable[[Any], Any]:
    def prepare(value: Any) -> Any:
        return field.get_db_prep_save(value, connections[alias])

    return prepare


def insert_rows(rows: Sequence[models.Model], *, using: str = "default") -> None:
    """INSERT `rows` (new instances of one model) in one statement and give each its new id."""
    if not rows:
        return
    model = type(rows[0])
    statement = _statement_for(model, using)
    params: list[Any] = []
    for row in rows:
        if type(row) is not model:
            raise TypeError("insert_rows takes instances of one model at a time")
        values = row.__dict__
        for attname, prepare in zip(statement.attnames, statement.preparers, strict=True):
            value = values[attname]
            params.append(value if prepare is None or value is None else prepare(value))
    sql = statement.head + ", ".join([statement.row_placeholder] * len(rows)) + statement.tail
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        new_ids = cursor.fetchall()
    for row, (new_id,) in zip(rows, new_ids, strict=True):
        row.pk = new_id
        row._state.adding = False
        row._state.db = using
