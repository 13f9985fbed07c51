"""Bindings of a revision, ready to run, cached in the process.

A flow revision and its bindings never change once saved (a change is a new revision), and
neither does an action version. So what a run needs per binding — the rows, the config with its
secrets decrypted, the masked copy for the execution log — is computed once per process and
reused by every later run of that revision's slot. The cache is bounded and keyed by revision
id and creation time (ids alone can come back after a rolled-back transaction, as in tests or a
restored database), so a new revision simply misses and an old one ages out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Col

from actions_app.schema_forms import mask_secrets
from flows_app.bindings import binding_config
from flows_app.models import Binding, Flow, FlowRevision
from tenants.models import Tenant

MAX_CACHED_SLOTS = 1024


@dataclass(frozen=True)
class PreparedBinding:
    binding: Binding
    config: dict[str, Any]
    masked_config: dict[str, Any]


_slots: OrderedDict[tuple[int, datetime, str], list[PreparedBinding]] = OrderedDict()
_lock = threading.Lock()


def prepared_bindings(revision: FlowRevision, trigger: str) -> list[PreparedBinding]:
    """The enabled bindings of one slot of one revision, in position order."""
    key = (revision.pk, revision.created_at, trigger)
    with _lock:
        cached = _slots.get(key)
        if cached is not None:
            _slots.move_to_end(key)
            return cached
    rows = (
        Binding.objects.filter(revision_id=revision.pk, trigger=trigger, enabled=True)
        .select_related("action", "pinned_version")
        .order_by("position")
    )
    prepared = []
    for binding in rows:
        config = binding_config(binding)
        prepared.append(PreparedBinding(binding, config, mask_secrets(config, binding.pinned_version.config_schema)))
    with _lock:
        _slots[key] = prepared
        while len(_slots) > MAX_CACHED_SLOTS:
            _slots.popitem(last=False)
    return prepared


def flow_for_run(tenant: Tenant, slug: str) -> Flow | None:
    """The tenant's flow `slug` with its current revision, in one plain query.

    The run endpoint looks a flow up on every sign-in; building that query through the ORM cost
    more than running it. Values go through the same converters the ORM would apply."""
    loader = _flow_loader()
    with connection.cursor() as cursor:
        cursor.execute(loader.sql, [tenant.pk, slug])
        found = cursor.fetchone()
    if found is None:
        return None
    split = len(loader.flow_columns)
    flow = Flow.from_db(connection.alias, loader.flow_attnames, loader.convert(loader.flow_columns, found[:split]))
    flow.tenant = tenant
    if flow.current_revision_id is not None:
        revision_values = loader.convert(loader.revision_columns, found[split:])
        flow.current_revision = FlowRevision.from_db(connection.alias, loader.revision_attnames, revision_values)
    return flow


@dataclass(frozen=True)
class _FlowLoader:
    sql: str
    flow_columns: list[Col]
    revision_columns: list[Col]
    # The ORM's converters of each column, looked up once (the lookup cost more than converting).
    converters: dict[Col, list[Any]]

    @property
    def flow_attnames(self) -> list[str]:
        return [c.target.attname for c in self.flow_columns]

    @property
    def revision_attnames(self) -> list[str]:
        return [c.target.attname for c in self.revision_columns]

    def convert(self, columns: list[Col], values: tuple[Any, ...]) -> list[Any]:
        converted = []
        for column, value in zip(columns, values, strict=True):
            for converter in self.converters[column]:
                value = converter(value, column, connection)
            converted.append(value)
        return converted


# Kept on the connection object itself (one per thread): its converters may be methods bound to
# that connection, so the loader lives and goes with it. A module-level map keyed by connection
# would keep every thread's connection alive through those methods.
_LOADER_ATTRIBUTE = "_actions_flow_loader"


def _flow_loader() -> _FlowLoader:
    wrapper: BaseDatabaseWrapper = connections[DEFAULT_DB_ALIAS]
    loader: _FlowLoader | None = wrapper.__dict__.get(_LOADER_ATTRIBUTE)
    if loader is None:
        quote = connection.ops.quote_name
        flow_columns = [field.get_col("f") for field in Flow._meta.concrete_fields]
        revision_columns = [field.get_col("r") for field in FlowRevision._meta.concrete_fields]
        selected = [f"f.{quote(c.target.column)}" for c in flow_columns]
        selected += [f"r.{quote(c.target.column)}" for c in revision_columns]
        sql = (
            f"SELECT {', '.join(selected)} FROM {quote(Flow._meta.db_table)} f"  # noqa: S608 (model names only)
            f" LEFT JOIN {quote(FlowRevision._meta.db_table)} r"
            f" ON r.{quote(FlowRevision._meta.pk.column)} = f.{quote(Flow._meta.get_field('current_revision').column)}"
            " WHERE f.tenant_id = %s AND f.slug = %s AND f.deleted_at IS NULL"
        )
        converters = {
            column: connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            for column in flow_columns + revision_columns
        }
        loader = _FlowLoader(sql, flow_columns, revision_columns, converters)
        wrapper.__dict__[_LOADER_ATTRIBUTE] = loader
    return loader
