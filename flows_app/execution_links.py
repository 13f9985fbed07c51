"""Where an investigation goes from an execution or its audit event: the execution's page, its
replay, its transaction's trace and the binding that ran.

A `flow.action_executed` event does not hold its execution's id (the settler writes both in one
COPY, before any id exists); it holds the execution's digest (flows_app.run_records), and the two
share the run's time, so the execution is found by time and digest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from actions_app.models import ActionKind
from audit_app.models import AuditEvent
from audit_app.unreadable import cannot_read
from flows_app.models import ActionExecution, Binding
from flows_app.run_records import execution_digest


@dataclass(frozen=True)
class ExecutionLinks:
    """The pages of one execution; None where the page no longer exists (action or flow deleted)."""

    detail: str | None
    replay: str | None
    trace: str | None


def execution_links(tenant_slug: str, execution: ActionExecution) -> ExecutionLinks:
    """Links for `execution`, whose `action` and `flow` are loaded (a deleted action or flow keeps
    its executions, but its pages answer 404, so they get no link)."""
    action, flow = execution.action, execution.flow
    trace = (
        reverse("flows:transaction", args=[tenant_slug, flow.slug, execution.transaction_id])
        if flow.deleted_at is None
        else None
    )
    if action.deleted_at is not None or trace is None:
        # An execution is read through its action and flow (flows_app.action_runs_views).
        return ExecutionLinks(None, None, trace)
    detail = reverse("actions:execution", args=[tenant_slug, action.slug, execution.pk])
    if action.kind == ActionKind.CUSTOM:
        replay = reverse("actions:detail", args=[tenant_slug, action.slug]) + f"?replay={execution.pk}#harness"
    else:  # a template has no editor: it replays on a page of its own (flows_app.replay_views)
        replay = reverse("actions:replay", args=[tenant_slug, action.slug, execution.pk])
    return ExecutionLinks(detail, replay, trace)


def executions_of_events(tenant_id: int, events: Iterable[AuditEvent]) -> dict[int, ActionExecution]:
    """The execution each `flow.action_executed` event among `events` records, by event id, in one
    query (with their action and flow). Events written before digests existed have none here."""
    claimed: dict[int, tuple[Any, str]] = {}
    for event in events:
        digest = event.after.get("execution_digest") if isinstance(event.after, dict) else None
        if event.type == "flow.action_executed" and isinstance(digest, str):
            claimed[event.pk] = (event.occurred_at, digest)
    if not claimed:
        return {}
    rows = ActionExecution.objects.filter(
        tenant_id=tenant_id, occurred_at__in={at for at, _ in claimed.values()}
    ).select_related("action", "flow")
    try:
        found = list(rows)
    except Exception as error:
        # A row holding a value that cannot be read (verify_audit reports it): the log still
        # shows its events, without links to their executions.
        if not cannot_read(error):
            raise
        return {}
    by_digest: dict[str, ActionExecution] = {}
    for row in found:
        # A value no execution could hold matches no digest (as in check_execution_records).
        with contextlib.suppress(TypeError, ValueError):
            by_digest.setdefault(execution_digest(vars(row)), row)
    return {pk: by_digest[digest] for pk, (_, digest) in claimed.items() if digest in by_digest}


def event_of(execution: ActionExecution) -> AuditEvent | None:
    """The `flow.action_executed` event that records `execution` (the other way round from
    `executions_of_events`), in one query; None if it cannot be told apart."""
    digest = execution_digest(vars(execution))
    candidates = AuditEvent.objects.filter(
        tenant_id=execution.tenant_id,
        type="flow.action_executed",
        occurred_at=execution.occurred_at,
        transaction_id=execution.transaction_id,
    )
    return next(
        (e for e in candidates if isinstance(e.after, dict) and e.after.get("execution_digest") == digest), None
    )


def binding_of(execution: ActionExecution) -> Binding | None:
    """The binding that ran `execution`, as its flow revision holds it (None if that revision is
    gone), for its on_error and timeout."""
    return Binding.objects.filter(
        revision__flow_id=execution.flow_id, revision__number=execution.revision_number, key=execution.binding_key
    ).first()


def recorded_config(execution: ActionExecution) -> dict[str, Any]:
    """The binding config the execution ran with, as recorded: secrets already masked."""
    context = execution.masked_input.get("context") if isinstance(execution.masked_input, dict) else None
    config = context.get("config") if isinstance(context, dict) else None
    return config if isinstance(config, dict) else {}
