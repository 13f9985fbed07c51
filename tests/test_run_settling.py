"""A flow run's records: one pending row from the sign-in, settled into executions and audit events
by the background worker or by the first reader (flows_app.run_records)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from audit_app.chain import verify_chain
from audit_app.models import AuditEvent
from audit_app.services import record
from core.row_insert import copy_rows
from flows_app import run_records
from flows_app.models import ActionExecution, PendingRunRecord
from flows_app.outbound.worker import start_in_process_worker, stop_in_process_worker
from flows_app.run_records import settle_pending, settle_tenant
from flows_app.services import BindingSpec
from tenants.acting import Actor
from tests.factories import bearer
from tests.flow_helpers import attach, custom_action, run
from tests.threads import all_at_once

POST_AUTH = "login.post-auth"
API_RUN = {"trigger": POST_AUTH, "user": {"id": "u1", "email": "u@example.com"}, "request": {"ip": "203.0.113.7"}}


def two_bindings(tenant: Any) -> None:
    attach(
        tenant,
        POST_AUTH,
        BindingSpec("webhook-emit", "1.0.0", {"url": "https://hooks.example.com/in", "secret": "s3cret-s3cret-s3cret"}),
        BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}),
    )


def executed_events(tenant: Any) -> Any:
    return AuditEvent.objects.for_tenant(tenant).filter(type="flow.action_executed")


def test_a_run_leaves_one_pending_record_until_it_is_settled(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    result = run(personas.tenant_a, POST_AUTH, transaction_id="tx-1", risk=70)
    assert [e.outcome for e in result.executions] == ["continue", "block"]
    assert PendingRunRecord.objects.filter(tenant=personas.tenant_a).count() == 1
    assert not ActionExecution.objects.exists() and not executed_events(personas.tenant_a).exists()

    assert settle_tenant(personas.tenant_a) == 1
    assert not PendingRunRecord.objects.exists()
    rows = list(ActionExecution.objects.order_by("position"))
    assert [(r.action.slug, r.outcome, r.transaction_id) for r in rows] == [
        ("webhook-emit", "continue", "tx-1"),
        ("block-by-risk-score", "block", "tx-1"),
    ]
    assert rows[0].masked_input["context"]["config"]["secret"] == "••••••"
    assert rows[0].masked_input["context"]["risk"] == {"score": 70}
    events = list(executed_events(personas.tenant_a).order_by("seq"))
    assert [(e.action_slug, e.after["outcome"]) for e in events] == [
        ("webhook-emit", "continue"),
        ("block-by-risk-score", "block"),
    ]
    assert verify_chain(personas.tenant_a) is None
    # Settling again finds nothing: every run is recorded once.
    assert settle_tenant(personas.tenant_a) == 0
    assert ActionExecution.objects.count() == 2


def test_records_keep_the_time_of_the_run_not_of_the_settling(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    before = timezone.now()
    run(personas.tenant_a, POST_AUTH, risk=10)
    after = timezone.now()
    payload = json.loads(PendingRunRecord.objects.get().payload)
    assert before <= datetime.fromisoformat(payload["occurred_at"]) <= after  # the run's own time
    # Stand in for a worker that was away for an hour.
    payload["occurred_at"] = (before - timedelta(hours=1)).isoformat()
    PendingRunRecord.objects.update(payload=json.dumps(payload))
    settle_tenant(personas.tenant_a)
    times = {row.occurred_at for row in ActionExecution.objects.all()}
    times |= {event.occurred_at for event in executed_events(personas.tenant_a)}
    assert times == {before - timedelta(hours=1)}
    assert verify_chain(personas.tenant_a) is None


def test_a_console_change_between_runs_keeps_the_chain_linear(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-early", risk=10)
    with transaction.atomic():
        record(tenant=personas.tenant_a, event_type="member.added", actor=Actor.system(), target="someone")
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-late", risk=10)
    settle_tenant(personas.tenant_a)
    assert verify_chain(personas.tenant_a) is None
    assert executed_events(personas.tenant_a).count() == 4


def test_the_runs_page_settles_before_it_reads(client: Any, personas: Any) -> None:
    two_bindings(personas.tenant_a)
    result = run(personas.tenant_a, POST_AUTH, transaction_id="tx-page", risk=70)
    client.force_login(personas.viewer)
    page = client.get("/t/acme/flows/login/runs/")
    assert page.status_code == 200 and b"tx-page" in page.content
    trace = client.get(f"/t/acme/flows/login/transactions/{result.transaction_id}/")
    assert trace.status_code == 200 and b"block-by-risk-score" in trace.content
    assert not PendingRunRecord.objects.exists()


def test_the_audit_api_settles_before_it_reads(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("runtime:execute", "audit:read")
    headers = bearer(token)
    two_bindings(personas.tenant_a)
    answer = client.post(
        "/api/v1/flows/login/run", json.dumps(API_RUN), content_type="application/json", headers=headers
    )
    assert answer.status_code == 200
    transaction_id = answer.json()["transaction_id"]
    events = client.get("/api/v1/audit", {"type": "flow.action_executed"}, headers=headers).json()["items"]
    mine = [event for event in events if event["transaction_id"] == transaction_id]
    assert sorted(event["subject"]["action"] for event in mine) == ["block-by-risk-score", "webhook-emit"]


def test_a_backlog_is_read_in_part_and_the_page_says_what_is_missing(
    client: Any, personas: Any, api_token: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the settler stopped for long, a reader does its share (READER_SETTLE_RUNS) and shows
    what is recorded, saying how many runs since when are not, instead of settling them all."""
    monkeypatch.setattr(run_records, "READER_SETTLE_RUNS", 2)
    two_bindings(personas.tenant_a)
    for number in range(9):
        run(personas.tenant_a, POST_AUTH, transaction_id=f"tx-{number}", risk=70)
    oldest_left = json.loads(PendingRunRecord.objects.order_by("id")[2].payload)["occurred_at"]
    client.force_login(personas.viewer)

    page = client.get("/t/acme/flows/login/runs/").content.decode()
    assert "tx-0" in page and "tx-1" in page and "tx-2" not in page  # the two oldest are recorded
    notice = page[page.index('id="unrecorded-runs"') :]
    notice = notice[: notice.index("</div>")]
    assert "7 runs since" in notice and "are not in these figures yet" in notice
    assert f'datetime="{datetime.fromisoformat(oldest_left).isoformat()}"' in notice

    # A region refreshed by htmx updates the notice out of band.
    region = client.get("/t/acme/audit/", headers={"HX-Request": "true"}).content.decode()
    assert 'id="unrecorded-runs" hx-swap-oob="true"' in region and "5 runs since" in region

    # A download has no page for the notice: its headers say it.
    export = client.get("/t/acme/audit/export.csv")
    assert export["X-Unrecorded-Runs"] == "3"
    assert datetime.fromisoformat(export["X-Unrecorded-Since"]) > datetime.fromisoformat(oldest_left)
    token = api_token("audit:read")
    answer = client.get("/api/v1/audit", headers=bearer(token))
    assert answer["X-Unrecorded-Runs"] == "1"

    # The next reader does the rest, and its region clears the notice; no notice outlives its request.
    region = client.get("/t/acme/actions/", headers={"HX-Request": "true"}).content.decode()
    assert '<div id="unrecorded-runs" hidden hx-swap-oob="true"></div>' in region
    page = client.get("/t/acme/flows/").content.decode()
    assert "Recording is behind" not in page
    assert not PendingRunRecord.objects.exists()
    assert "X-Unrecorded-Runs" not in client.get("/api/v1/audit", headers=bearer(token))
    assert set(ActionExecution.objects.values_list("transaction_id", flat=True)) == {f"tx-{n}" for n in range(9)}


def test_a_reader_settles_only_its_own_tenant(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    attach(personas.tenant_b, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}))
    run(personas.tenant_a, POST_AUTH)
    run(personas.tenant_b, POST_AUTH)
    settle_tenant(personas.tenant_b)
    assert list(PendingRunRecord.objects.values_list("tenant_id", flat=True)) == [personas.tenant_a.pk]
    assert ActionExecution.objects.get().tenant_id == personas.tenant_b.pk


def test_a_worker_round_settles_every_tenant_in_batches(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    attach(personas.tenant_b, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}))
    for n in range(5):
        run(personas.tenant_a, POST_AUTH, transaction_id=f"a-{n}")
        run(personas.tenant_b, POST_AUTH, transaction_id=f"b-{n}")
    assert settle_pending(limit=3) == 6  # three of each tenant
    assert PendingRunRecord.objects.count() == 4
    assert settle_pending(limit=3) == 4
    assert ActionExecution.objects.filter(tenant=personas.tenant_a).count() == 10
    assert ActionExecution.objects.filter(tenant=personas.tenant_b).count() == 5
    assert verify_chain(personas.tenant_a) is None and verify_chain(personas.tenant_b) is None


def test_the_settle_runs_command_once_settles_everything(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    for n in range(3):
        run(personas.tenant_a, POST_AUTH, transaction_id=f"cmd-{n}")
    out = StringIO()
    call_command("settle_runs", "--once", "--limit", "2", stdout=out)
    assert out.getvalue() == "Settled 3 runs.\n"
    assert ActionExecution.objects.count() == 6


def test_the_settle_runs_command_refuses_bad_options() -> None:
    with pytest.raises(CommandError, match="--interval must be positive and --limit at least 1"):
        call_command("settle_runs", "--once", "--limit", "0")


@pytest.mark.django_db(transaction=True)
def test_the_in_process_worker_settles_runs_without_a_reader(personas: Any, monkeypatch: Any) -> None:
    # The same rounds deliver webhooks: no DNS or HTTP to hooks.example.com from a test.
    monkeypatch.setattr("flows_app.outbound.worker.deliver_due", lambda **_: 0)
    two_bindings(personas.tenant_a)
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-worker")
    start_in_process_worker(interval_s=0.05)
    try:
        deadline = time.monotonic() + 10
        while PendingRunRecord.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_in_process_worker()
    assert ActionExecution.objects.filter(transaction_id="tx-worker").count() == 2
    assert not PendingRunRecord.objects.exists()


def test_copy_rows_stores_what_the_orm_reads_back(personas: Any) -> None:
    flow = attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}))
    binding = flow.current_revision.bindings.get()  # type: ignore[union-attr]
    awkward = {"ünïcode": "naïve \u2028 \\ \t tab", "nested": [1, 2.5, None, True, {"k": "v\nline"}], "empty": {}}
    row = {
        "tenant_id": personas.tenant_a.pk,
        "flow_id": flow.pk,
        "revision_number": 2,
        "transaction_id": "tx-copy",
        "trigger": POST_AUTH,
        "binding_key": binding.key,
        "action_id": binding.action_id,
        "action_version": "1.0.0",
        "position": 0,
        "outcome": "continue",
        "result": None,
        "duration_ms": 1.25,
        "masked_input": awkward,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        copy_rows(cursor, ActionExecution, [row])
    stored = ActionExecution.objects.get(transaction_id="tx-copy")
    assert stored.masked_input == awkward
    assert stored.result is None and stored.logs == [] and stored.error_code == ""
    assert stored.binding_key == binding.key and stored.duration_ms == 1.25


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers itself")
@pytest.mark.django_db(transaction=True)
def test_settlers_racing_with_runs_record_every_run_exactly_once(personas: Any) -> None:
    two_bindings(personas.tenant_a)

    def work(thread: int) -> None:
        for n in range(8):
            if thread % 2:
                run(personas.tenant_a, POST_AUTH, transaction_id=f"race-{thread}-{n}")
            else:
                settle_pending(limit=3)

    assert all_at_once(8, work) == []
    settle_tenant(personas.tenant_a)
    runs = 4 * 8
    assert ActionExecution.objects.count() == 2 * runs
    assert ActionExecution.objects.values("transaction_id").distinct().count() == runs
    assert executed_events(personas.tenant_a).count() == 2 * runs
    assert verify_chain(personas.tenant_a) is None


def test_a_record_that_cannot_be_stored_is_set_aside_and_the_rest_settle(
    client: Any, personas: Any, caplog: Any
) -> None:
    two_bindings(personas.tenant_a)
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-before")
    broken = PendingRunRecord.objects.create(tenant=personas.tenant_a, payload='{"not": "a run record"')
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-after")
    client.force_login(personas.viewer)
    with caplog.at_level("ERROR", logger="flows_app.run_records"):
        page = client.get("/t/acme/flows/login/runs/")
    assert page.status_code == 200 and b"tx-before" in page.content and b"tx-after" in page.content
    broken.refresh_from_db()
    assert broken.problem.startswith("JSONDecodeError: ")
    logged = f"Pending run record {broken.pk} of tenant {personas.tenant_a.pk} set aside, it cannot be settled"
    assert f"{logged}: JSONDecodeError" in caplog.text
    # Set aside means out of the way: the worker and readers no longer trip over it.
    assert settle_pending() == 0 and settle_tenant(personas.tenant_a) == 0
    assert verify_chain(personas.tenant_a) is None
    # And listed for whoever runs the settler.
    out = StringIO()
    call_command("settle_runs", "--problems", stdout=out)
    assert out.getvalue() == f"acme\t{broken.pk}\t{broken.problem}\n1 run(s) set aside.\n"


def test_a_worker_settling_one_run_at_a_time_also_sets_a_bad_one_aside(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    broken = PendingRunRecord.objects.create(tenant=personas.tenant_a, payload="[]")
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-after")
    assert settle_pending(limit=1) == 1
    broken.refresh_from_db()
    assert broken.problem.startswith("TypeError: ")
    assert settle_pending(limit=1) == 1
    assert set(ActionExecution.objects.values_list("transaction_id", flat=True)) == {"tx-after"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL refuses NUL in text and jsonb")
def test_a_value_postgresql_refuses_sets_aside_only_its_own_run(personas: Any) -> None:
    two_bindings(personas.tenant_a)
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-good")
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-nul")
    record = PendingRunRecord.objects.order_by("id").last()
    assert record is not None
    payload = json.loads(record.payload)
    payload["executions"][0]["logs"] = [{"level": "info", "message": "a\u0000b"}]
    PendingRunRecord.objects.filter(pk=record.pk).update(payload=json.dumps(payload))
    assert settle_tenant(personas.tenant_a) == 2
    assert set(ActionExecution.objects.values_list("transaction_id", flat=True)) == {"tx-good"}
    assert PendingRunRecord.objects.get().problem.startswith("DataError: ")


@pytest.mark.parametrize("character", ["\\u0000", "\\ud800"], ids=["nul", "lone-surrogate"])
def test_unstorable_text_from_action_code_is_recorded_as_a_replacement_character(personas: Any, character: str) -> None:
    """NUL and lone UTF-16 surrogates (JavaScript strings may hold one) cannot be stored or even
    encoded as UTF-8; a lone surrogate in a log used to crash the sandbox worker."""
    state = f'{{ "k{character}": "v{character}" }}'
    source = f'console.log("before{character}after"); return {{ kind: "continue", state: {state} }};'
    custom_action(personas.tenant_a, "nul-writer", source, [POST_AUTH])
    thrower = custom_action(personas.tenant_a, "nul-thrower", f'throw new Error("bad{character}thing");', [POST_AUTH])
    attach(
        personas.tenant_a,
        POST_AUTH,
        BindingSpec("nul-writer", "0.1.0"),
        BindingSpec(thrower.slug, "0.1.0", on_error="continue"),
    )
    result = run(personas.tenant_a, POST_AUTH, transaction_id="tx-nul")
    assert result.outcome["state"] == {"k\ufffd": "v\ufffd"}
    assert result.executions[1].error is not None and "bad\ufffdthing" in result.executions[1].error["message"]
    settle_tenant(personas.tenant_a)
    written, thrown = ActionExecution.objects.order_by("position")
    assert written.logs == [{"level": "log", "message": "before\ufffdafter"}]
    assert "bad\ufffdthing" in thrown.error_message
    assert not PendingRunRecord.objects.exists()


def test_the_worker_takes_the_tenant_waiting_longest_first(personas: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("flows_app.run_records.TENANTS_PER_ROUND", 1)
    attach(personas.tenant_b, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}))
    two_bindings(personas.tenant_a)
    run(personas.tenant_b, POST_AUTH, transaction_id="b-first")
    run(personas.tenant_a, POST_AUTH, transaction_id="a-second")
    assert personas.tenant_a.pk < personas.tenant_b.pk
    assert settle_pending() == 1
    assert list(PendingRunRecord.objects.values_list("tenant_id", flat=True)) == [personas.tenant_a.pk]
    assert settle_pending() == 1 and not PendingRunRecord.objects.exists()


def test_a_reader_works_off_a_backlog_larger_than_one_batch(personas: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("flows_app.run_records.SETTLE_BATCH_RUNS", 2)
    two_bindings(personas.tenant_a)
    for n in range(5):
        run(personas.tenant_a, POST_AUTH, transaction_id=f"backlog-{n}")
    assert settle_tenant(personas.tenant_a) == 5
    assert ActionExecution.objects.values("transaction_id").distinct().count() == 5


def test_a_settler_overtaken_between_reading_and_writing_reads_again(personas: Any, monkeypatch: Any) -> None:
    two_bindings(personas.tenant_a)
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-1")
    run(personas.tenant_a, POST_AUTH, transaction_id="tx-2")
    expand = run_records._expand
    overtaken: list[int] = []

    def another_settler_gets_there_first(*args: Any) -> None:
        if not overtaken:
            overtaken.append(0)  # once: the other settler's own expanding comes through here too
            overtaken[0] = run_records._settle_rows(personas.tenant_a.pk, 1, None)
        expand(*args)

    monkeypatch.setattr(run_records, "_expand", another_settler_gets_there_first)
    assert settle_tenant(personas.tenant_a) == 1  # the other settler took tx-1
    assert overtaken == [1]
    assert sorted(ActionExecution.objects.values_list("transaction_id", flat=True)) == ["tx-1", "tx-1", "tx-2", "tx-2"]
    assert executed_events(personas.tenant_a).count() == 4
    assert verify_chain(personas.tenant_a) is None
