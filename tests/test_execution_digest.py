"""Execution records are covered by the audit chain: each flow.action_executed event carries a digest
of its execution, so an edit to the execution row shows in verify_audit (flows_app.run_records)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit_app.chain import record_digest, verify_chain
from audit_app.models import AuditEvent
from audit_app.services import EventDraft, record_many
from flows_app.models import ActionExecution, PendingRunRecord
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tenants.acting import Actor
from tests.flow_helpers import attach, run

POST_AUTH = "login.post-auth"


def settled_runs(tenant: Any, runs: int = 2) -> list[AuditEvent]:
    """`runs` sign-ins through two bindings, settled; their flow.action_executed events in seq order."""
    attach(
        tenant,
        POST_AUTH,
        BindingSpec("webhook-emit", "1.0.0", {"url": "https://hooks.example.com/in", "secret": "s3cret-s3cret-s3cret"}),
        BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}),
    )
    for n in range(runs):
        run(tenant, POST_AUTH, transaction_id=f"tx-{n}", risk=70 if n % 2 else 10)
    settle_tenant(tenant)
    return list(AuditEvent.objects.for_tenant(tenant).filter(type="flow.action_executed").order_by("seq"))


def execution_of(event: AuditEvent) -> ActionExecution:
    return ActionExecution.objects.get(
        tenant_id=event.tenant_id,
        transaction_id=event.transaction_id,
        trigger=event.trigger,
        action__slug=event.action_slug,
    )


def verify_audit() -> tuple[int, list[str]]:
    out = StringIO()
    try:
        call_command("verify_audit", stdout=out)
    except SystemExit as exit_info:
        return int(exit_info.code or 0), out.getvalue().splitlines()
    return 0, out.getvalue().splitlines()


def test_each_executed_event_carries_its_execution_digest_and_verify_audit_says_so(personas: Any) -> None:
    events = settled_runs(personas.tenant_a)
    assert len(events) == 4
    digests = [(event.after or {})["execution_digest"] for event in events]
    assert all(digest.startswith("v1:") and len(digest) == 3 + 64 for digest in digests)
    assert len(set(digests)) == 4
    assert verify_audit() == (0, ["acme: OK (4 execution records match their events' digests)", "globex: OK"])


# (field, a value an editor might put there)
EDITS = [
    ("result", {"kind": "continue", "claims": {"role": "admin"}}),
    ("logs", [{"level": "info", "message": "nothing to see"}]),
    ("masked_input", {"user": {"email": "someone-else@example.com"}}),
    ("outcome", "redirect"),
    ("error_code", "timeout"),
    ("error_message", "it was the network"),
    ("on_error_applied", "continue"),
    ("duration_ms", 0.5),
    ("action_version", "9.9.9"),
    ("position", 7),
    ("revision_number", 99),
    ("transaction_id", "tx-other"),
]


@pytest.mark.parametrize(("field", "value"), EDITS, ids=[field for field, _ in EDITS])
def test_an_edited_execution_breaks_the_chain_at_its_event(personas: Any, field: str, value: Any) -> None:
    events = settled_runs(personas.tenant_a)
    edited = events[1]
    ActionExecution.objects.filter(pk=execution_of(edited).pk).update(**{field: value})
    found = verify_chain(personas.tenant_a)
    assert found is not None
    assert (found.seq, found.reason) == (edited.seq, "record mismatch")
    code, lines = verify_audit()
    assert code == 1
    assert lines[0].startswith(f"acme: BROKEN at seq {edited.seq}: record mismatch (")
    assert lines[1:] == ["globex: OK"]


def test_a_deleted_or_moved_execution_breaks_the_chain_at_its_event(personas: Any) -> None:
    events = settled_runs(personas.tenant_a)
    execution_of(events[2]).delete()
    found = verify_chain(personas.tenant_a)
    assert found is not None and (found.seq, found.reason) == (events[2].seq, "record mismatch")

    events = settled_runs(personas.tenant_b)
    moved = execution_of(events[0])
    ActionExecution.objects.filter(pk=moved.pk).update(occurred_at=moved.occurred_at.replace(microsecond=1))
    found = verify_chain(personas.tenant_b)
    assert found is not None and (found.seq, found.reason) == (events[0].seq, "record mismatch")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("binding_key", "'not-a-uuid'"),
        ("error_message", "X'00ff'"),
        ("logs", "'[unclosed'"),
        # Text SQLite holds but cannot decode as UTF-8 (reading it raises OperationalError).
        *((column, "CAST(x'61ff62' AS TEXT)") for column in ("error_message", "logs", "result", "outcome")),
    ],
    ids=[
        "bad-uuid",
        "bytes-for-text",
        "bad-json",
        *(f"invalid-utf8-{c}" for c in ("error_message", "logs", "result", "outcome")),
    ],
)
def test_a_corrupt_execution_row_breaks_the_chain_at_its_event(personas: Any, column: str, value: str) -> None:
    events = settled_runs(personas.tenant_a)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA ignore_check_constraints = ON")
        cursor.execute(
            f"UPDATE flows_app_actionexecution SET {column} = {value} WHERE id = %s",
            [execution_of(events[1]).pk],
        )
        cursor.execute("PRAGMA ignore_check_constraints = OFF")
    code, lines = verify_audit()
    assert code == 1
    assert lines[0].startswith(f"acme: BROKEN at seq {events[1].seq}: record mismatch (")
    assert lines[1:] == ["globex: OK"]


def test_swapped_results_break_the_chain_at_the_first_of_the_two(personas: Any) -> None:
    events = settled_runs(personas.tenant_a)
    first, second = execution_of(events[0]), execution_of(events[3])
    ActionExecution.objects.filter(pk=first.pk).update(result=second.result)
    ActionExecution.objects.filter(pk=second.pk).update(result=first.result)
    found = verify_chain(personas.tenant_a)
    assert found is not None and (found.seq, found.reason) == (events[0].seq, "record mismatch")


def test_events_written_before_digests_still_verify(personas: Any) -> None:
    """Executions recorded before this change: their events carry no digest, their chain holds."""
    older = EventDraft(
        personas.tenant_a,
        "flow.action_executed",
        Actor.system("engine"),
        action_slug="block-by-risk-score",
        action_version="1.0.0",
        flow_slug="login",
        flow_revision=1,
        trigger=POST_AUTH,
        transaction_id="tx-old",
        after={"outcome": "continue", "duration_ms": 1.5, "error": None, "on_error_applied": None},
    )
    with transaction.atomic():
        record_many([older, older])
    assert verify_audit() == (0, ["acme: OK (2 execution records predate digests and are not covered)", "globex: OK"])
    settled_runs(personas.tenant_a, runs=1)
    assert verify_chain(personas.tenant_a) is None
    assert verify_audit() == (
        0,
        [
            "acme: OK (2 execution records match their events' digests; "
            "2 execution records predate digests and are not covered)",
            "globex: OK",
        ],
    )


AWKWARD = {
    "big": 1e16,
    "negative_big": -1.5e16,
    "looks_like_numbers": "1e+16 and -0.0",
    "huge": 1e300,
    "tiny": 5e-324,
    "negative_zero": -0.0,
    "whole": 2.0,
    "integer": 12345678901234567890123,
    "fraction": 0.1 + 0.2,
    "text": 'ünï\u2028code \\ " \t',
    "nested": [{"b": 1, "a": [None, True, False, 1.5e-7]}],
}


def test_values_the_database_rewrites_still_match_their_digest(personas: Any) -> None:
    """jsonb turns 1e16 into 10000000000000000 and -0.0 into 0; a digest compares values, not spellings."""
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}))
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-awkward")
    pending = PendingRunRecord.objects.get()
    payload = json.loads(pending.payload)
    execution = payload["executions"][0]
    execution["result"] = {"kind": "continue", "state": AWKWARD}
    execution["logs"] = [{"level": "info", "message": "m", "values": AWKWARD}]
    execution["masked_input"]["state"] = AWKWARD
    execution["duration_ms"] = 3
    PendingRunRecord.objects.filter(pk=pending.pk).update(payload=json.dumps(payload))
    assert settle_tenant(personas.tenant_a) == 1
    stored = ActionExecution.objects.get(transaction_id="tx-awkward")
    assert stored.result is not None and stored.result["state"]["integer"] == AWKWARD["integer"]
    assert verify_chain(personas.tenant_a) is None
    # And a change of value among them still shows.
    ActionExecution.objects.filter(pk=stored.pk).update(result={"kind": "continue", "state": {**AWKWARD, "big": 1e15}})
    found = verify_chain(personas.tenant_a)
    assert found is not None and found.reason == "record mismatch"


def test_a_digest_tells_a_number_from_its_spelling_in_a_string() -> None:
    assert record_digest({"v": 1e16}) == record_digest({"v": 10**16})  # how jsonb gives it back
    assert record_digest({"v": -0.0}) == record_digest({"v": 0.0})
    assert record_digest({"v": 1e16}) != record_digest({"v": "1e+16"})
    assert record_digest({"v": [1e16, "1e+16"]}) != record_digest({"v": [10**16, "10000000000000000"]})
    assert record_digest({"v": 1.5}) != record_digest({"v": 1.25})


def test_many_runs_verify_in_batches(personas: Any) -> None:
    events = settled_runs(personas.tenant_a, runs=260)  # 520 executions: more than one batch
    assert verify_chain(personas.tenant_a) is None
    ActionExecution.objects.filter(pk=execution_of(events[-1]).pk).update(duration_ms=99.0)
    found = verify_chain(personas.tenant_a)
    assert found is not None and (found.seq, found.reason) == (events[-1].seq, "record mismatch")
