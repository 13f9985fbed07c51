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

from actions_app.schema_forms import mask_secrets
from flows_app.bindings import binding_config
from flows_app.models import Binding, FlowRevision

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
