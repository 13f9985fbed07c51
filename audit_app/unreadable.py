"""Reading rows that may be corrupt: telling a row that holds a value the database cannot give back
(a corrupt time, text that is not UTF-8) from a database that went away. Verification and the
retention purge report the first kind as a break at that row and go on with the other tenants; the
second stops them, as nothing can be said about any chain then."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import DataError, InterfaceError, OperationalError
from django.db.models import Model

from tenants.models import Tenant


def described(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def cannot_read(error: Exception) -> bool:
    """Whether `error`, raised reading a row, says the row holds a value that cannot be read,
    rather than that the database went away (which must stop verification, not be reported as
    tampering)."""
    if isinstance(error, OperationalError | InterfaceError):
        return _undecodable_text(error)
    # A value its column's Python type cannot hold (a time past year 9999, text where a number
    # belongs, JSON that does not parse): conversion errors only. Anything else (a bug, an aborted
    # transaction, a constraint) is not evidence about the row and must not be reported as tampering.
    return isinstance(error, ValueError | TypeError | OverflowError | DataError)


def _undecodable_text(error: Exception) -> bool:
    # SQLite keeps whatever bytes it is given as TEXT, and Python's sqlite3 reports text that is
    # not UTF-8 as an OperationalError, the class it also uses for a database it cannot reach.
    # This one is raised by the driver itself (no SQLite error code): the row is at fault.
    for candidate in (error, error.__cause__):
        if isinstance(candidate, sqlite3.OperationalError | OperationalError) and str(candidate).startswith(
            "Could not decode to UTF-8 column "
        ):
            return getattr(candidate, "sqlite_errorcode", None) is None
    return False


def unreadable_columns(model: type[Model], pk: Any) -> str:
    """Which columns of the `model` row `pk` cannot be read, for the operator looking into it."""
    problems = []
    for model_field in model._meta.concrete_fields:
        try:
            model._default_manager.filter(pk=pk).values_list(model_field.attname, flat=True).first()
        except Exception as error:
            if not cannot_read(error):
                raise
            problems.append(f"{model_field.attname} cannot be read ({described(error)})")
    return "; ".join(problems)


@dataclass(frozen=True)
class UnreadableTenant:
    """A tenant row that cannot be read (its slug or name is corrupt). Its events name it by id,
    so its chain can still be checked."""

    pk: int
    problem: str

    def __str__(self) -> str:
        return f"tenant #{self.pk}"


def tenants_in_slug_order(slug: str | None = None) -> Iterator[Tenant | UnreadableTenant]:
    """Every tenant (or the one with `slug`) for a command that goes through them all: a row that
    cannot be read comes as an UnreadableTenant instead of stopping the others."""
    tenants = Tenant.objects.order_by("slug", "pk")
    if slug is not None:
        tenants = tenants.filter(slug=slug)
    for pk in tenants.values_list("pk", flat=True):
        try:
            tenant = Tenant.objects.get(pk=pk)
        except Tenant.DoesNotExist:
            continue  # deleted since the list was read
        except Exception as error:
            if not cannot_read(error):
                raise
            yield UnreadableTenant(pk, unreadable_columns(Tenant, pk) or described(error))
        else:
            yield tenant
