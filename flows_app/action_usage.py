"""Where actions are attached, counted for the catalogue's list page and `GET /actions`."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from actions_app.models import ActionQuerySet
from flows_app.models import Binding


def attached_count() -> Coalesce:
    """Number of bindings of the action in the revision each flow currently runs."""
    counts = (
        Binding.objects.current()
        .filter(action=OuterRef("pk"))
        .order_by()
        .values("action")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def with_attached_count(actions: ActionQuerySet) -> ActionQuerySet:
    """`actions` annotated with `attached`, what the catalogue's search sorts by."""
    return actions.annotate(attached=attached_count())
