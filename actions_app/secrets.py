"""A custom action's secrets (contract §11): named values shared by all its versions, stored
encrypted with the secret box, never shown again once set. Code reads them as
`input.secrets.NAME`; the audit trail records names, never values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
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
        record(
            tenant=action.tenant,
            event_type="action.secret_set",
            actor=acting.actor,
            meta=acting.meta,
            action_slug=action.slug,
            target=name,
            after={"name": name, "replaced": not created},
        )
    return not created


def delete_secret(action: Action, name: str, *, acting: Acting) -> None:
    """Delete the secret `name` (ActionSecret.DoesNotExist when the action has none by that name).
    Audited as `action.secret_deleted` with the name only."""
    with transaction.atomic():
        secret = ActionSecret.objects.select_for_update().get(action=action, name=name)
        secret.delete()
        record(
            tenant=action.tenant,
            event_type="action.secret_deleted",
            actor=acting.actor,
            meta=acting.meta,
            action_slug=action.slug,
            target=name,
            before={"name": name},
        )


def secrets_for_execution(action_id: int) -> dict[str, str]:
    """The action's secrets decrypted, for `input.secrets` of one execution."""
    rows = ActionSecret.objects.filter(action_id=action_id).values_list("name", "encrypted_value")
    return {name: decrypt_secret(encrypted) for name, encrypted in rows}
