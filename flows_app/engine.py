"""The run engine (contract §6): run one trigger slot of a flow for one transaction.

Bindings of the slot run in position order. `continue` merges its state and claims and passes
on; `block` and `redirect` end the slot; `demand_mfa` is remembered and the chain goes on. An
execution that fails follows its binding's on_error. What every execution did is written as one
pending run record, in the same database transaction as the transaction row and the outbox
messages the run produced; flows_app.run_records turns it into executions and audit events.
How the results combine into the slot's outcome is flows_app.slot_outcome's alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from actions_app.models import ActionKind
from actions_app.runtime import ExecutionError, execute_action, validate_action_result
from actions_app.runtime.protocol import clip_error_message
from actions_app.secrets import SecretsStamp, recent_secrets_stamp, secrets_for_run
from actions_app.triggers import FLOW_SLOTS
from core.rate_limits import CountersUnavailable
from core.row_insert import PreparedInsert, PreparedUpdate, prepare_insert, prepare_update, write_at_once
from flows_app.models import (
    ActionExecution,
    Binding,
    Flow,
    FlowRevision,
    FlowTransaction,
    PendingRunRecord,
    WebhookDelivery,
)
from flows_app.outbound.outbox import delivery_values
from flows_app.prepared import PreparedBinding, prepared_bindings
from flows_app.run_records import pending_record
from flows_app.slot_outcome import counted_result, fold_slot_outcome
from flows_app.template_behaviours import TemplateCall, TemplateOutcome, run_platform_template
from tenants.acting import Acting

ERROR_MESSAGE_COLUMN_CHARS = ActionExecution._meta.get_field("error_message").max_length or 500


class RunRefused(ValueError):
    """The run request itself is wrong (trigger not in this flow, bad input)."""


@dataclass
class RunRequest:
    trigger: str
    user: dict[str, Any]
    request: dict[str, Any]
    risk_score: float = 0
    transaction_id: str | None = None


@dataclass
class ExecutionReport:
    action: str
    version: str
    trigger: str
    outcome: str
    duration_ms: float
    error: dict[str, str] | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    on_error_applied: str = ""


@dataclass
class RunResult:
    transaction_id: str
    flow_revision: int
    outcome: dict[str, Any]
    executions: list[ExecutionReport]


def transaction_ttl() -> timedelta:
    return timedelta(seconds=getattr(settings, "FLOW_TRANSACTION_TTL_SECONDS", 3600))


def _transaction_for(flow: Flow, transaction_id: str, *, known_new: bool) -> tuple[FlowTransaction, bool]:
    """The transaction's record and whether it must be (re)written at the end of the run.

    A new transaction takes the flow's current revision; it is inserted together with the run's
    executions, in one commit. A transaction past its expiry starts over on the current revision:
    an attempt that old is a new attempt as far as the operator's changes are concerned."""
    now = timezone.now()
    found = (
        None
        if known_new
        else FlowTransaction.objects.select_related("revision").filter(flow=flow, transaction_id=transaction_id).first()
    )
    if found is not None and found.expires_at > now:
        return found, False
    assert flow.current_revision is not None
    fresh = found or FlowTransaction(tenant=flow.tenant, flow=flow, transaction_id=transaction_id)
    fresh.revision, fresh.state, fresh.created_at = flow.current_revision, {}, now
    fresh.expires_at = now + transaction_ttl()
    return fresh, True


def _transaction_write(
    flow_tx: FlowTransaction, state: dict[str, Any], rewrite: bool
) -> PreparedInsert | PreparedUpdate | None:
    """What the run must write of its transaction record: new, changed, or nothing."""
    if flow_tx.pk is None:
        flow_tx.state = state
        # A parallel first trigger of the same transaction may have recorded it a moment ago,
        # with the same current revision; its record stands.
        return prepare_insert(FlowTransaction, [flow_tx.__dict__], on_conflict_do_nothing=True)
    if rewrite or state != flow_tx.state:
        changed = {"state": state, "revision_id": flow_tx.revision_id, "created_at": flow_tx.created_at}
        return prepare_update(FlowTransaction, flow_tx.pk, {**changed, "expires_at": flow_tx.expires_at})
    return None


def _action_input(
    flow: Flow, run: RunRequest, binding: Binding, transaction_id: str, state: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    return {
        "trigger": run.trigger,
        "user": run.user,
        "request": run.request,
        "state": dict(state),
        "context": {
            "tenant": flow.tenant.slug,
            "flow": flow.slug,
            "transaction_id": transaction_id,
            "action": {"slug": binding.action.slug, "version": binding.pinned_version.version},
            "config": config,
            "risk": {"score": run.risk_score},
        },
    }


@dataclass
class _Executed:
    result: dict[str, Any] | None
    error: ExecutionError | None
    logs: list[dict[str, str]]
    duration_ms: float
    outbound: list[Any] = field(default_factory=list)


def execute_template(slug: str, version: str, action_input: dict[str, Any], counter_scope: str) -> _Executed:
    """Run platform template `slug` at `version` once, as a flow run does (a replay too: it passes
    its own `counter_scope`, so it moves no counter of live traffic)."""
    started = time.perf_counter()
    failure: ExecutionError | None = None
    try:
        outcome: TemplateOutcome = run_platform_template(
            slug, TemplateCall(version, action_input["context"]["config"], action_input, counter_scope)
        )
    except CountersUnavailable as unavailable:
        # Redis is away: the binding's on_error decides whether the sign-in fails open or closed.
        failure = ExecutionError("unavailable", f"Not counted: {unavailable}.")
    except Exception as error:  # a template bug must fail this execution only, like custom code
        failure = ExecutionError("exception", f"Template failed: {error}")
    elapsed = (time.perf_counter() - started) * 1000
    if failure is not None:
        return _Executed(None, failure, [], elapsed)
    result, problem = validate_action_result(outcome.result, action_input["trigger"])
    return _Executed(result, problem, outcome.logs, elapsed, outcome.outbound)


def _execute(
    binding: Binding, action_input: dict[str, Any], counter_scope: str, stamp: SecretsStamp | None
) -> _Executed:
    version = binding.pinned_version
    if binding.action.kind == ActionKind.TEMPLATE:
        return execute_template(binding.action.slug, version.version, action_input, counter_scope)
    # Secrets travel with this execution's input only; what comes back is redacted by execute_action.
    executed = execute_action(
        isolate_key=f"{binding.action.tenant_id}:{version.pk}:{version.checksum}",
        compiled_js=version.compiled_js,
        action_input=action_input,
        timeout_ms=binding.timeout_ms,
        source_map=version.source_map,
        secrets=secrets_for_run(binding.action, stamp) if stamp is not None else {},
    )
    return _Executed(executed.result, executed.error, executed.logs, executed.duration_ms)


def run_flow(flow: Flow, run: RunRequest, *, acting: Acting) -> RunResult:
    """Run `run.trigger` of `flow` for one transaction and record everything it did."""
    if run.trigger not in FLOW_SLOTS[flow.kind]:
        raise RunRefused(f"{run.trigger!r} is not a slot of the {flow.kind} flow: {', '.join(FLOW_SLOTS[flow.kind])}.")
    transaction_id = run.transaction_id or uuid.uuid4().hex
    flow_tx, rewrite = _transaction_for(flow, transaction_id, known_new=run.transaction_id is None)
    revision: FlowRevision = flow_tx.revision
    prepared = prepared_bindings(revision, run.trigger) if flow.enabled else []
    stamp = _secrets_stamp(flow, prepared)
    state: dict[str, Any] = dict(flow_tx.state)
    reports: list[ExecutionReport] = []
    recorded: list[dict[str, Any]] = []
    outbound: list[tuple[Binding, Any]] = []
    # A generator: the fold runs each binding when it needs its result, and none after a block or redirect.
    executions = _execute_bindings(flow, run, prepared, stamp, transaction_id, state, reports, recorded, outbound)
    final = fold_slot_outcome(state, executions)
    # Every value is worked out before anything is written (an empty slot leaves no record).
    records = prepare_insert(
        PendingRunRecord,
        [
            pending_record(
                tenant_id=flow.tenant_id,
                flow_id=flow.pk,
                flow_slug=flow.slug,
                revision_number=revision.number,
                transaction_id=transaction_id,
                trigger=run.trigger,
                actor=acting.actor,
                meta=acting.meta,
                executions=recorded,
            )
        ]
        if recorded
        else [],
    )
    deliveries = prepare_insert(
        WebhookDelivery,
        [
            delivery_values(
                tenant=flow.tenant,
                binding=binding,
                action_slug=binding.action.slug,
                flow_slug=flow.slug,
                trigger=run.trigger,
                transaction_id=transaction_id,
                url=message.url,
                signing_secret=message.signing_secret,
                body=message.body,
            )
            for binding, message in outbound
        ],
    )
    transaction_write = _transaction_write(flow_tx, state, rewrite)
    # The sign-in is answered only after its records are durable: an answer whose record a
    # database crash then loses is what the fault bench counts as a lost run (it found one with
    # asynchronous commit). RUN_RECORDS_DURABLE = False trades that for not waiting on the flush.
    write_at_once(
        [records, deliveries, *([transaction_write] if transaction_write else [])],
        relaxed_commit=not getattr(settings, "RUN_RECORDS_DURABLE", True),
    )
    return RunResult(transaction_id, revision.number, final, reports)


def _secrets_stamp(flow: Flow, prepared: list[PreparedBinding]) -> SecretsStamp | None:
    """The tenant's secrets stamp (as read in the last second) when the slot runs custom code; None
    when only templates run, which have no secrets."""
    if not any(item.binding.action.kind == ActionKind.CUSTOM for item in prepared):
        return None
    return recent_secrets_stamp(flow.tenant_id)


def _execute_bindings(
    flow: Flow,
    run: RunRequest,
    prepared: list[PreparedBinding],
    stamp: SecretsStamp | None,
    transaction_id: str,
    state: dict[str, Any],
    reports: list[ExecutionReport],
    recorded: list[dict[str, Any]],
    outbound: list[tuple[Binding, Any]],
) -> Iterator[dict[str, Any] | None]:
    """Run the slot's bindings one at a time, as the outcome fold asks for them, each with the
    `state` so far, and yield what each counts as (flows_app.slot_outcome). What each did goes
    into `reports` (the answer), `recorded` (the run record) and `outbound` (webhook messages)."""
    for item in prepared:
        binding, config = item.binding, item.config
        action_input = _action_input(flow, run, binding, transaction_id, state, config)
        executed = _execute(binding, action_input, f"{flow.tenant_id}:{binding.key}", stamp)
        outcome_kind = executed.result["kind"] if executed.result else "error"
        applied = ""
        if executed.error is not None:
            applied = binding.on_error
        else:
            outbound += [(binding, message) for message in executed.outbound]
        reports.append(
            ExecutionReport(
                action=binding.action.slug,
                version=binding.pinned_version.version,
                trigger=run.trigger,
                outcome=outcome_kind,
                duration_ms=round(executed.duration_ms, 3),
                error={"code": executed.error.code, "message": executed.error.message} if executed.error else None,
                logs=executed.logs,
                on_error_applied=applied,
            )
        )
        masked = {**action_input, "context": {**action_input["context"], "config": item.masked_config}}
        recorded.append(_execution_values(binding, executed, outcome_kind, applied, masked))
        yield counted_result(
            executed.result, executed.error, action_slug=binding.action.slug, on_error=binding.on_error
        )


def _execution_values(
    binding: Binding, executed: _Executed, outcome_kind: str, applied: str, masked_input: dict[str, Any]
) -> dict[str, Any]:
    """What the run record keeps of one execution: the ActionExecution fields that vary per
    execution (flows_app.run_records adds the run's own), and the action's slug for its event."""
    return {
        "binding_key": str(binding.key),
        "action_id": binding.action_id,
        "action_slug": binding.action.slug,
        "action_version": binding.pinned_version.version,
        "position": binding.position,
        "outcome": outcome_kind,
        "result": executed.result,
        "error_code": executed.error.code if executed.error else "",
        # The column holds 500 characters; the cut keeps a trailing "(line L, column C)".
        "error_message": clip_error_message(executed.error.message, ERROR_MESSAGE_COLUMN_CHARS)
        if executed.error
        else "",
        "on_error_applied": applied,
        "duration_ms": executed.duration_ms,
        "logs": executed.logs,
        "masked_input": masked_input,
    }
