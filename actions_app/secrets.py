"""A custom action's secrets (contract §11): named values shared by all its versions, stored
encrypted with the secret box, never shown again once set. Code reads them as
`input.secrets.NAME`; the audit trail records names, never values."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from actions_app.models import MAX_SECRET_VALUE_BYTES, SECRET_NAME_RE, Action, ActionKind, ActionSecret
from audit_app.services import record
from core.api_types import text_problem
from core.secret_box import decrypt_secret, encrypt_secret
from tenants.acting import Acting

_SECRET_NAME = re.compile(SECRET_NAME_RE)
NAME_RULE = "an upper-case letter, then up to 63 upper-case letters, digits or underscores (API_KEY)"


class SecretRefused(ValueError):
    """A secret that cannot be set; `field` is `name` or `value`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SecretListing:
    """What anyone may see of a secret: its name and who set it when."""

    name: str
    updated_at: datetime
    updated_by: str


def name_problem(name: str) -> str | None:
    if not _SECRET_NAME.fullmatch(name):
        return f"must be {NAME_RULE}"
    return None


def value_problem(value: str) -> str | None:
    if value == "":
        return "must not be empty"
    problem = text_problem(value)
    if problem:
        return problem
    size = len(value.encode("utf-8"))
    if size > MAX_SECRET_VALUE_BYTES:
        return f"is {size:,} bytes; a secret holds at most {MAX_SECRET_VALUE_BYTES:,} bytes (4 KiB)"
    return None


def _refuse_unless_custom(action: Action) -> None:
    if action.kind != ActionKind.CUSTOM:
        raise SecretRefused("name", "only custom actions have secrets; a template's secrets are in its binding config")


def list_secrets(action: Action) -> list[SecretListing]:
    """The action's secrets by name: names, times and who set them, never values."""
    rows = action.secrets.order_by("name").values_list("name", "updated_at", "updated_by_name")
    return [SecretListing(name, updated_at, updated_by) for name, updated_at, updated_by in rows]


def set_secret(action: Action, name: str, value: str, *, acting: Acting) -> bool:
    """Add the secret `name` or replace its value; True when it replaced one. Audited as
    `action.secret_set` with the name only."""
    _refuse_unless_custom(action)
    problem = name_problem(name)
    if problem:
        raise SecretRefused("name", f"The name {problem}.")
    problem = value_problem(value)
    if problem:
        raise SecretRefused("value", f"The value {problem}.")
    with transaction.atomic():
        # Locks the action so two writers of one name queue instead of racing the unique constraint.
        Action.objects.select_for_update().filter(pk=action.pk).first()
        _, created = ActionSecret.objects.update_or_create(
            action=action,
            name=name,
            defaults={
                "encrypted_value": encrypt_secret(value),
                "updated_at": timezone.now(),
                "updated_by_name": acting.actor.name,
            },
        )
        _record_change(action, name, "action.secret_set", acting, after={"name": name, "replaced": not created})
    return not created


def delete_secret(action: Action, name: str, *, acting: Acting) -> None:
    """Delete the secret `name` (ActionSecret.DoesNotExist when the action has none by that name).
    Audited as `action.secret_deleted` with the name only."""
    with transaction.atomic():
        secret = ActionSecret.objects.select_for_update().get(action=action, name=name)
        secret.delete()
        _record_change(action, name, "action.secret_deleted", acting, before={"name": name})


def _record_change(action: Action, name: str, event_type: str, acting: Acting, **change: Any) -> None:
    """The audit event of a set or delete (the name, never the value), and the tenant's secrets
    stamp forgotten: now for this thread's next run, and again once other threads see the change."""
    record(
        tenant=action.tenant,
        event_type=event_type,
        actor=acting.actor,
        meta=acting.meta,
        action_slug=action.slug,
        target=name,
        **change,
    )
    _forget_stamp(action.tenant_id)
    transaction.on_commit(lambda: _forget_stamp(action.tenant_id))


def secrets_for_execution(action_id: int) -> dict[str, str]:
    """The action's secrets decrypted, for `input.secrets` of one execution."""
    rows = ActionSecret.objects.filter(action_id=action_id).values_list("name", "encrypted_value")
    return {name: decrypt_secret(encrypted) for name, encrypted in rows}


# What a run knows of a tenant's secrets without reading them: how many there are and when the
# latest was set. Any set changes the latest time and any delete the count (a set then a delete of
# the same name restores both, and the secrets with them), so an unchanged stamp means unchanged
# secrets. Raw database values: only compared, never shown.
SecretsStamp = tuple[Any, Any]

# A process reads a tenant's stamp at most this often; a change made in another process reaches
# its runs within that time (at once in the process that made it). Reading it on every run cost
# 0.25–0.5 ms of PostgreSQL per sign-in, as a query of its own or joined to the flow's.
STAMP_SECONDS = 1.0
MAX_CACHED_ACTIONS = 4096
MAX_CACHED_TENANTS = 4096
_stamps: dict[int, tuple[float, SecretsStamp]] = {}
# Keyed by the action's id and creation time: an id can come back after a rolled-back transaction.
_cached: OrderedDict[tuple[int, datetime], tuple[SecretsStamp, dict[str, str]]] = OrderedDict()
_cached_lock = threading.Lock()


def secrets_stamp(tenant_id: int) -> SecretsStamp:
    """The tenant's SecretsStamp, read from the database in one query."""
    found = ActionSecret.objects.filter(action__tenant_id=tenant_id).aggregate(
        count=Count("pk"), latest=Max("updated_at")
    )
    return found["count"], found["latest"]


def recent_secrets_stamp(tenant_id: int) -> SecretsStamp:
    """The tenant's SecretsStamp as read in the last STAMP_SECONDS by this process."""
    now = time.monotonic()
    with _cached_lock:
        known = _stamps.get(tenant_id)
    if known is not None and now - known[0] < STAMP_SECONDS:
        return known[1]
    stamp = secrets_stamp(tenant_id)
    with _cached_lock:
        if len(_stamps) > MAX_CACHED_TENANTS:
            _stamps.clear()
        _stamps[tenant_id] = (now, stamp)
    return stamp


def _forget_stamp(tenant_id: int) -> None:
    with _cached_lock:
        _stamps.pop(tenant_id, None)


def secrets_for_run(action: Action, stamp: SecretsStamp) -> dict[str, str]:
    """The action's secrets for an execution, read and decrypted once per process while the
    tenant's `stamp` stays the same, so a run of an action with or without secrets adds no query.
    Any set or delete in the tenant changes the stamp; the next run reads again."""
    key = (action.pk, action.created_at)
    with _cached_lock:
        hit = _cached.get(key)
        if hit is not None and hit[0] == stamp:
            _cached.move_to_end(key)
            return hit[1]
    secrets = secrets_for_execution(action.pk)
    with _cached_lock:
        _cached[key] = (stamp, secrets)
        _cached.move_to_end(key)
        while len(_cached) > MAX_CACHED_ACTIONS:
            _cached.popitem(last=False)
    return secrets
