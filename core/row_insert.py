"""Writing the rows of flow runs: a few new rows on every sign-in, and many at a time when runs
are settled, in as few round trips as the database allows and without bulk_create's per-call cost.

`QuerySet.bulk_create` builds its SQL from scratch on every call (field lists, placeholders,
per-value preparation through the compiler), and on the sign-in path that bookkeeping cost more
than the database work itself. Here each INSERT's shape is worked out once per model and
database, rows are plain attname -> value mappings (no model instances), and values are prepared
only for the fields whose database form differs from the Python one (JSON, IP addresses, and
datetimes and UUIDs where the driver needs text). `write_at_once` sends a sign-in's rows as one
statement on PostgreSQL; `copy_rows` settles runs with COPY. Elsewhere the ORM's bulk_create is
the tool.

Only for plain models: an auto-incrementing primary key, no multi-table inheritance, no
auto_now fields, no save() overrides relied on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

# Fields whose Python value is what the database driver takes as it is (subclasses included).
_PASS_THROUGH = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.FloatField)
_AUTO_KEYS = ("AutoField", "BigAutoField", "SmallAutoField")
# A value of each kind whose preparation may turn out to change nothing on a given backend
# (PostgreSQL takes aware datetimes and UUIDs as they are; SQLite wants text).
_PROBES: tuple[tuple[type[models.Field[Any, Any]], Callable[[], Any]], ...] = (
    (models.DateTimeField, timezone.now),
    (models.UUIDField, uuid.uuid4),
)

_Preparer = Callable[[Any, BaseDatabaseWrapper], Any]


@dataclass(frozen=True)
class _Statement:
    head: str
    row_placeholder: str
    attnames: tuple[str, ...]
    table: str  # quoted, like the column names
    key: str
    columns: tuple[str, ...]
    preparers: tuple[_Preparer | None, ...]
    # For a row given as a mapping: the default of each field it leaves out, as the model would.
    defaults: tuple[Callable[[], Any], ...]
    # For COPY, which reads every value as text: the encoder of each JSON field, None elsewhere.
    json_encoders: tuple[type[json.JSONEncoder] | None, ...]
    json_fields: tuple[bool, ...]


_statements: dict[tuple[type[models.Model], str], _Statement] = {}


def _statement_for(model: type[models.Model], alias: str) -> _Statement:
    key = (model, alias)
    found = _statements.get(key)
    if found is not None:
        return found
    connection = connections[alias]
    meta = model._meta
    if meta.pk is None or meta.pk.get_internal_type() not in _AUTO_KEYS or meta.parents:
        raise TypeError(f"{meta.label}: row_insert needs a plain model with an auto-incrementing key")
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    if any(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) for f in fields):
        raise TypeError(f"{meta.label}: row_insert does not fill auto_now fields")
    quote = connection.ops.quote_name
    # Only model metadata goes into the SQL text; every value is a parameter.
    statement = _Statement(
        head=f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES ",  # noqa: S608
        row_placeholder=f"({', '.join(['%s'] * len(fields))})",
        attnames=tuple(f.attname for f in fields),
        table=quote(meta.db_table),
        key=quote(meta.pk.column),
        columns=tuple(quote(f.column) for f in fields),
        preparers=tuple(_preparer(field, connection) for field in fields),
        defaults=tuple(field.get_default for field in fields),
        json_encoders=tuple(getattr(field, "encoder", None) for field in fields),
        json_fields=tuple(isinstance(field, models.JSONField) for field in fields),
    )
    _statements[key] = statement
    return statement


def _preparer(field: models.Field[Any, Any], connection: BaseDatabaseWrapper) -> _Preparer | None:
    """How a value of `field` becomes a parameter on `connection`; None when it goes as it is."""
    if isinstance(field, _PASS_THROUGH):
        return None
    if isinstance(field, models.ForeignKey) and field.target_field.get_internal_type() in _AUTO_KEYS:
        return None
    for kind, sample in _PROBES:
        if isinstance(field, kind):
            probe = sample()
            if field.get_db_prep_save(probe, connection) is probe:
                return None
    return field.get_db_prep_save


def _row_params(statement: _Statement, values: Mapping[str, Any], connection: BaseDatabaseWrapper) -> list[Any]:
    params = []
    for attname, prepare, default in zip(statement.attnames, statement.preparers, statement.defaults, strict=True):
        value = values[attname] if attname in values else default()
        params.append(value if prepare is None or value is None else prepare(value, connection))
    return params


class BatchCursor(Protocol):
    """What `write_batch` yields: a DB-API cursor (psycopg's, or Django's wrapper of one)."""

    def execute(self, sql: str, params: Sequence[Any] | None = ...) -> Any: ...

    def executemany(self, sql: str, params_seq: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...

    @property
    def rowcount(self) -> int: ...


@contextmanager
def write_batch(using: str = "default") -> Iterator[BatchCursor]:
    """A transaction and a cursor in it, for `add_rows`, prepared statements and plain SQL: an
    error anywhere rolls the whole batch back and reaches the caller as Django's exception."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        yield cursor


@dataclass(frozen=True)
class PreparedInsert:
    """An INSERT with its parameters worked out, to run later (`run` in a `write_batch`, or
    `write_at_once`): preparing values outside the transaction keeps its locks (SQLite's write
    lock) for a shorter time."""

    head: str
    row_placeholder: str
    suffix: str
    params: list[list[Any]]

    @property
    def sql(self) -> str:
        return self.head + self.row_placeholder + self.suffix

    def run(self, cursor: BatchCursor) -> None:
        if self.params:
            cursor.executemany(self.sql, self.params)

    def as_one_statement(self) -> tuple[str, list[Any]]:
        """All rows in one multi-row INSERT."""
        values = ", ".join([self.row_placeholder] * len(self.params))
        return self.head + values + self.suffix, [value for row in self.params for value in row]


@dataclass(frozen=True)
class PreparedUpdate:
    """An UPDATE of one row with its parameters worked out (`prepare_update`)."""

    sql: str
    params: list[Any]

    def run(self, cursor: BatchCursor) -> None:
        cursor.execute(self.sql, self.params)

    def as_one_statement(self) -> tuple[str, list[Any]]:
        return self.sql, self.params


def prepare_insert(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    on_conflict_do_nothing: bool = False,
    using: str = "default",
) -> PreparedInsert:
    """The INSERT of `rows` of `model`, each row mapping field attnames (`tenant_id`, not `tenant`)
    to values; a field left out takes its default. No model instance is built, and the rows get
    no ids back: a batch does not wait for an answer. `on_conflict_do_nothing` skips rows that
    would break a unique constraint."""
    statement = _statement_for(model, using)
    connection = connections[using]
    suffix = " ON CONFLICT DO NOTHING" if on_conflict_do_nothing else ""
    params = [_row_params(statement, row, connection) for row in rows]
    return PreparedInsert(statement.head, statement.row_placeholder, suffix, params)


def write_at_once(
    parts: Sequence[PreparedInsert | PreparedUpdate], *, relaxed_commit: bool = False, using: str = "default"
) -> None:
    """Write `parts` all or nothing, in as little as the database allows.

    On PostgreSQL that is one statement: each part becomes a data-modifying WITH query, and
    outside a transaction the statement is its own. A flow run's writes cost a third of the
    client's CPU they cost as a pipelined transaction (BEGIN, SET LOCAL, statements, COMMIT:
    three round trips through psycopg and Django's transaction handling), measured side by side.
    `relaxed_commit` lets that commit skip the wait for the WAL flush (engine: why), through
    set_config(..., true) in the statement itself; inside a caller's transaction it is not
    applied, as it would relax the caller's commit too. Elsewhere: a `write_batch`."""
    parts = [part for part in parts if not isinstance(part, PreparedInsert) or part.params]
    if not parts:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        with write_batch(using) as cursor:
            for part in parts:
                part.run(cursor)
        return
    queries, params = [], []
    if relaxed_commit and not connection.in_atomic_block:
        queries.append("relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS setting)")
        final = "SELECT setting FROM relaxed"  # referenced, so it runs
    else:
        final = "SELECT 1"
    for number, part in enumerate(parts):
        sql, part_params = part.as_one_statement()
        queries.append(f"part{number} AS ({sql})")
        params += part_params
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"WITH {', '.join(queries)} {final}", params)


def add_rows(cursor: BatchCursor, model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """`prepare_insert` and run it at once."""
    prepare_insert(model, rows).run(cursor)


@dataclass(frozen=True)
class PreparedCopy:
    """Many rows of one model with their values worked out (`prepare_copy`), to write later
    with `run`: on PostgreSQL with COPY, which costs the server a fraction of one INSERT per row;
    elsewhere with executemany."""

    copy_sql: str  # empty where there is no COPY
    rows: list[list[Any]]
    insert: PreparedInsert | None

    def run(self, cursor: Any, *, using: str = "default") -> None:
        """Write the rows through a plain cursor of `transaction.atomic()` (or `write_batch`)."""
        if self.insert is not None:
            self.insert.run(cursor)
            return
        if not self.rows:
            return
        # The copy goes past Django's cursor wrapper; its errors should still be Django's.
        with connections[using].wrap_database_errors, cursor.copy(self.copy_sql) as copy:
            for row in self.rows:
                copy.write_row(row)


def prepare_copy(
    model: type[models.Model], rows: Sequence[Mapping[str, Any]], *, using: str = "default"
) -> PreparedCopy:
    """`rows` of `model` (as `prepare_insert` takes them) ready for a bulk write. For the settling
    of flow runs (flows_app.run_records), thousands of rows at a time: working the values out
    before the transaction keeps its locks for a shorter time. COPY reads every value as text, so
    JSON goes as its JSON text and the rest as psycopg writes it."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return PreparedCopy("", [], prepare_insert(model, rows, using=using))
    statement = _statement_for(model, using)
    prepared = []
    for values in rows:
        params = []
        for attname, is_json, encoder, default in zip(
            statement.attnames, statement.json_fields, statement.json_encoders, statement.defaults, strict=True
        ):
            value = values[attname] if attname in values else default()
            params.append(json.dumps(value, cls=encoder) if is_json and value is not None else value)
        prepared.append(params)
    return PreparedCopy(f"COPY {statement.table} ({', '.join(statement.columns)}) FROM STDIN", prepared, None)


def copy_rows(
    cursor: Any, model: type[models.Model], rows: Sequence[Mapping[str, Any]], *, using: str = "default"
) -> None:
    """`prepare_copy` and write at once."""
    prepare_copy(model, rows, using=using).run(cursor, using=using)


def prepare_update(
    model: type[models.Model], pk: Any, values: Mapping[str, Any], *, using: str = "default"
) -> PreparedUpdate:
    """The UPDATE of the fields in `values` (by attname) of one row of `model`."""
    statement = _statement_for(model, using)
    connection = connections[using]
    assignments, params = [], []
    for attname, value in values.items():
        position = statement.attnames.index(attname)
        prepare = statement.preparers[position]
        assignments.append(f"{statement.columns[position]} = %s")
        params.append(value if prepare is None or value is None else prepare(value, connection))
    sql = f"UPDATE {statement.table} SET {', '.join(assignments)} WHERE {statement.key} = %s"  # noqa: S608 (model names)
    return PreparedUpdate(sql, [*params, pk])
