"""The per-tenant audit hash chain: it verifies, and tampering through raw SQL breaks it where it happened."""

from __future__ import annotations

import itertools
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit_app.chain import GENESIS_HASH, ChainBreak, event_hash, verify_chain
from audit_app.models import AuditChainHead, AuditEvent
from audit_app.services import EventDraft, chain_events, record, record_many
from core.row_insert import add_rows, write_batch
from tenants.acting import Actor, RequestMeta
from tenants.models import Tenant
from tests.threads import all_at_once


def _record(tenant: Any, n: int) -> AuditEvent:
    with transaction.atomic():
        return record(
            tenant=tenant,
            event_type="action.version_saved",
            actor=Actor.system("tests"),
            meta=RequestMeta(ip="2001:DB8::1", user_agent="pytest", request_id=f"req-{n}"),
            action_slug="my-action",
            action_version=f"0.{n}.0",
            before={"version": n - 1, "ratio": 1.0},
            after={"version": n, "tags": ("a", "ü")},
        )


@pytest.fixture
def chain(personas: Any) -> list[AuditEvent]:
    """Five events of tenant A after the personas' own; returns all of A's events in seq order."""
    for n in range(1, 6):
        _record(personas.tenant_a, n)
    return list(AuditEvent.objects.for_tenant(personas.tenant_a).order_by("seq"))


def _raw(sql: str, params: list[Any] | None = None) -> None:
    """Run SQL as a privileged role would: on PostgreSQL, replica mode skips the append-only triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def _break(tenant: Any) -> tuple[int, str] | None:
    found = verify_chain(tenant)
    return None if found is None else (found.seq, found.reason)


def test_it_chains_events_per_tenant(personas: Any, chain: list[AuditEvent]) -> None:
    assert [event.seq for event in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(chain))
    head = AuditChainHead.objects.get(tenant=personas.tenant_a)
    assert (head.last_seq, head.last_hash) == (chain[-1].seq, chain[-1].hash)
    assert verify_chain(personas.tenant_a) is None
    # Tenant B has its own chain, starting at 1.
    assert min(AuditEvent.objects.for_tenant(personas.tenant_b).values_list("seq", flat=True)) == 1
    assert verify_chain(personas.tenant_b) is None


def test_stored_rows_hash_like_the_rows_that_were_written(chain: list[AuditEvent]) -> None:
    written = chain[-1]
    stored = AuditEvent.objects.get(pk=written.pk)
    assert event_hash(stored.prev_hash, stored) == written.hash


def test_record_many_groups_events_by_tenant(personas: Any) -> None:
    def draft(tenant: Any, n: int) -> EventDraft:
        return EventDraft(tenant=tenant, event_type="flow.action_executed", actor=Actor.system(), target=str(n))

    before = {t.pk: AuditChainHead.objects.get(tenant=t).last_seq for t in (personas.tenant_a, personas.tenant_b)}
    with transaction.atomic():
        rows = record_many([draft(personas.tenant_b, 1), draft(personas.tenant_a, 2), draft(personas.tenant_b, 3)])
    assert [row.target for row in rows] == ["1", "2", "3"]
    b = before[personas.tenant_b.pk]
    assert [row.seq for row in rows] == [b + 1, before[personas.tenant_a.pk] + 1, b + 2]
    assert verify_chain(personas.tenant_a) is None
    assert verify_chain(personas.tenant_b) is None


def test_editing_a_row_breaks_the_chain_at_that_event(personas: Any, chain: list[AuditEvent]) -> None:
    edited = chain[-2]
    assert edited.type == "action.version_saved"
    _raw("UPDATE audit_app_auditevent SET type = 'member.removed' WHERE id = %s", [edited.pk])
    assert _break(personas.tenant_a) == (edited.seq, "hash mismatch")


def test_editing_after_breaks_the_chain_at_that_event(personas: Any, chain: list[AuditEvent]) -> None:
    _raw("UPDATE audit_app_auditevent SET after = %s WHERE id = %s", [json.dumps({"version": 99}), chain[2].pk])
    assert _break(personas.tenant_a) == (chain[2].seq, "hash mismatch")
    assert verify_chain(personas.tenant_b) is None


def test_deleting_a_row_leaves_a_gap(personas: Any, chain: list[AuditEvent]) -> None:
    _raw("DELETE FROM audit_app_auditevent WHERE id = %s", [chain[2].pk])
    assert _break(personas.tenant_a) == (chain[2].seq, "gap")


def test_a_forged_row_is_detected_even_with_a_correct_hash(personas: Any, chain: list[AuditEvent]) -> None:
    # The forger shifts the later events up and slots a well-formed event in at seq k.
    k = chain[2].seq
    for event in reversed(chain[2:]):
        _raw("UPDATE audit_app_auditevent SET seq = seq + 1 WHERE id = %s", [event.pk])
    forged = AuditEvent(
        tenant=personas.tenant_a,
        occurred_at=chain[2].occurred_at,
        type="member.removed",
        actor_kind="user",
        actor_id="1",
        actor_name="a-owner",
        target="a-viewer",
        seq=k,
        prev_hash=chain[1].hash,
    )
    forged.hash = event_hash(forged.prev_hash, forged)
    forged.save()
    assert _break(personas.tenant_a) == (k + 1, "prev_hash mismatch")


def test_a_row_appended_with_a_correct_hash_disagrees_with_the_head(personas: Any, chain: list[AuditEvent]) -> None:
    last = chain[-1]
    forged = AuditEvent(
        tenant=personas.tenant_a, type="member.removed", actor_kind="system", seq=last.seq + 1, prev_hash=last.hash
    )
    forged.hash = event_hash(forged.prev_hash, forged)
    forged.save()
    assert _break(personas.tenant_a) == (last.seq + 1, "head mismatch")


def test_swapping_two_rows_is_detected(personas: Any, chain: list[AuditEvent]) -> None:
    first, second = chain[1], chain[2]
    _raw("UPDATE audit_app_auditevent SET seq = %s WHERE id = %s", [10_000, first.pk])
    _raw("UPDATE audit_app_auditevent SET seq = %s WHERE id = %s", [first.seq, second.pk])
    _raw("UPDATE audit_app_auditevent SET seq = %s WHERE id = %s", [second.seq, first.pk])
    assert _break(personas.tenant_a) == (first.seq, "prev_hash mismatch")


def test_deleting_the_last_row_disagrees_with_the_head(personas: Any, chain: list[AuditEvent]) -> None:
    _raw("DELETE FROM audit_app_auditevent WHERE id = %s", [chain[-1].pk])
    assert verify_chain(personas.tenant_a) == ChainBreak(
        chain[-1].seq, "head mismatch", f"the head says {chain[-1].seq} events, the table has {chain[-2].seq}"
    )


def test_verify_audit_reports_ok_for_intact_chains(chain: list[AuditEvent]) -> None:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().splitlines() == ["acme: OK", "globex: OK"]


def test_verify_audit_reports_the_first_break_and_exits_1(personas: Any, chain: list[AuditEvent]) -> None:
    _raw("DELETE FROM audit_app_auditevent WHERE id = %s", [chain[2].pk])
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    assert out.getvalue().splitlines() == [
        f"acme: BROKEN at seq {chain[2].seq}: gap (event {chain[2].seq} is missing; next is {chain[3].seq})",
        "globex: OK",
    ]
    out = StringIO()
    call_command("verify_audit", "--tenant", "globex", stdout=out)
    assert out.getvalue() == "globex: OK\n"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers itself")
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_linear_chain(personas: Any) -> None:
    start = AuditChainHead.objects.get(tenant=personas.tenant_a).last_seq

    def write(thread: int) -> None:
        for n in range(10):
            with transaction.atomic():
                record(
                    tenant=personas.tenant_a,
                    event_type="flow.action_executed",
                    actor=Actor.system(),
                    target=f"{thread}-{n}",
                )

    assert all_at_once(20, write) == []
    seqs = list(AuditEvent.objects.for_tenant(personas.tenant_a).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, start + 201))
    assert verify_chain(personas.tenant_a) is None


def _append(cursor: Any, rows: list[Any]) -> None:
    """Chain and insert events in one batch, as a flow run's settling does (it COPYs them)."""
    chain_events(cursor, rows)
    add_rows(cursor, AuditEvent, [vars(row) for row in rows])


def _run_draft(tenant: Any, n: int) -> EventDraft:
    return EventDraft(
        tenant=tenant,
        event_type="flow.action_executed",
        actor=Actor.system(),
        meta=RequestMeta(ip="::ffff:203.0.113.9", user_agent="pytest", request_id=f"req-{n}"),
        flow_slug="login",
        flow_revision=2,
        after={"outcome": "continue", "duration_ms": 1.0, "error": None},
        transaction_id=f"tx-{n}",
    )


def test_a_write_batch_appends_events_to_the_same_chain_as_record(personas: Any) -> None:
    fresh = Tenant.objects.create(slug="fresh", name="Fresh")  # no chain head yet
    _record(personas.tenant_a, 1)
    with write_batch() as cursor:
        drafts = [_run_draft(fresh, 1), _run_draft(personas.tenant_a, 2), _run_draft(fresh, 3)]
        _append(cursor, [draft.as_values() for draft in drafts])
    _record(personas.tenant_a, 4)
    assert verify_chain(fresh) is None
    assert verify_chain(personas.tenant_a) is None
    fresh_events = list(AuditEvent.objects.for_tenant(fresh).order_by("seq"))
    assert [(e.seq, e.transaction_id) for e in fresh_events] == [(1, "tx-1"), (2, "tx-3")]
    assert fresh_events[0].prev_hash == GENESIS_HASH
    a_types = list(AuditEvent.objects.for_tenant(personas.tenant_a).order_by("-seq").values_list("type", flat=True)[:3])
    assert a_types == ["action.version_saved", "flow.action_executed", "action.version_saved"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers itself")
@pytest.mark.django_db(transaction=True)
def test_batches_and_single_events_racing_on_a_new_tenant_leave_one_linear_chain(personas: Any) -> None:
    fresh = Tenant.objects.create(slug="fresh", name="Fresh")  # every thread finds no head at first

    def write(thread: int) -> None:
        for n in range(5):
            if thread % 2:
                with write_batch() as cursor:
                    drafts = [_run_draft(fresh, thread * 100 + n), _run_draft(fresh, -n)]
                    _append(cursor, [draft.as_values() for draft in drafts])
            else:
                _record(fresh, n)

    assert all_at_once(12, write) == []
    seqs = list(AuditEvent.objects.for_tenant(fresh).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 6 * 5 + 6 * 5 * 2 + 1))
    assert verify_chain(fresh) is None


SQLITE_ONLY = pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
POSTGRESQL_ONLY = pytest.mark.skipif(connection.vendor != "postgresql", reason="a value only PostgreSQL stores")

# (column, SQL value) that leave a row the table holds but the ORM cannot read, or reads as
# something of the wrong type.
# Text SQLite holds but cannot decode: 'a', a byte no UTF-8 text has, 'b'.
INVALID_UTF8 = "CAST(x'61ff62' AS TEXT)"

CORRUPTIONS = [
    pytest.param("occurred_at", "'not a time'", marks=SQLITE_ONLY, id="unparsable-time"),
    pytest.param("occurred_at", "'2025-13-45 25:61:00'", marks=SQLITE_ONLY, id="impossible-time"),
    pytest.param("occurred_at", "12345", marks=SQLITE_ONLY, id="time-as-a-number"),
    pytest.param("occurred_at", "'infinity'", marks=POSTGRESQL_ONLY, id="infinite-time"),
    pytest.param("occurred_at", "'0044-03-15 12:00:00+00 BC'", marks=POSTGRESQL_ONLY, id="time-before-year-1"),
    pytest.param("after", "'{\"version\": 3'", marks=SQLITE_ONLY, id="bad-json"),
    pytest.param("before", "'[1, 2,'", marks=SQLITE_ONLY, id="bad-json-before"),
    pytest.param("after", "NULL", id="missing-after"),
    pytest.param("ip", "NULL", id="missing-ip"),
    pytest.param("seq", "'three'", marks=SQLITE_ONLY, id="seq-as-text"),
    pytest.param("flow_revision", "'seven'", marks=SQLITE_ONLY, id="number-as-text"),
    pytest.param("actor_name", "X'00ff'", marks=SQLITE_ONLY, id="text-as-bytes"),
    pytest.param("prev_hash", "''", id="missing-prev-hash"),
    # Text that is not UTF-8 (SQLite stores what it is given; reading it raises OperationalError).
    *(
        pytest.param(column, INVALID_UTF8, marks=SQLITE_ONLY, id=f"invalid-utf8-{column}")
        for column in ("actor_name", "target", "hash", "prev_hash", "after", "before", "ip", "user_agent", "type")
    ),
    pytest.param("seq", INVALID_UTF8, marks=SQLITE_ONLY, id="invalid-utf8-seq"),
]


def _raw_past_checks(sql: str, params: list[Any]) -> None:
    """`_raw`, past SQLite's CHECK constraints too (its JSON columns check that they hold JSON)."""
    if connection.vendor == "sqlite":
        _raw("PRAGMA ignore_check_constraints = ON")
    try:
        _raw(sql, params)
    finally:
        if connection.vendor == "sqlite":
            _raw("PRAGMA ignore_check_constraints = OFF")


@pytest.mark.parametrize(("column", "value"), CORRUPTIONS)
def test_verify_audit_reports_a_corrupt_row_at_its_seq_and_goes_on(
    personas: Any, chain: list[AuditEvent], column: str, value: str
) -> None:
    corrupt = chain[-3]  # one of the fixture's own events, with every column filled
    assert corrupt.ip and corrupt.after and corrupt.before
    _raw_past_checks(f"UPDATE audit_app_auditevent SET {column} = {value} WHERE id = %s", [corrupt.pk])
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    acme, *others = out.getvalue().splitlines()
    assert acme.startswith(f"acme: BROKEN at seq {corrupt.seq}: "), acme
    # The tenants after the broken one are still verified.
    assert others == ["globex: OK"]


def test_a_row_that_cannot_be_read_is_named_with_its_column(personas: Any, chain: list[AuditEvent]) -> None:
    bad_time = "'infinity'" if connection.vendor == "postgresql" else "'not a time'"
    _raw(f"UPDATE audit_app_auditevent SET occurred_at = {bad_time} WHERE id = %s", [chain[-3].pk])
    found = verify_chain(personas.tenant_a)
    assert found is not None
    assert (found.seq, found.reason) == (chain[-3].seq, "unreadable row")
    assert found.detail.startswith("occurred_at cannot be read (")
    assert verify_chain(personas.tenant_b) is None


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
def test_verify_audit_goes_on_after_a_corrupt_chain_head(personas: Any, chain: list[AuditEvent]) -> None:
    _raw("UPDATE audit_app_auditchainhead SET last_seq = 'many' WHERE tenant_id = %s", [personas.tenant_a.pk])
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    assert out.getvalue().splitlines() == [
        f"acme: BROKEN at seq {chain[-1].seq + 1}: head mismatch (the head's last seq is 'many', not a number)",
        "globex: OK",
    ]


def test_a_corrupt_row_deep_in_a_long_chain_is_found_at_its_seq(personas: Any) -> None:
    """Past the first chunk the verifier reads, and with good chunks after it."""
    drafts = [
        EventDraft(personas.tenant_a, "action.version_saved", Actor.system("tests"), target=f"n{n}")
        for n in range(4500)
    ]
    with transaction.atomic():
        rows = record_many(drafts)
    corrupt = rows[3100]
    bad_time = "'infinity'" if connection.vendor == "postgresql" else "'not a time'"
    _raw(f"UPDATE audit_app_auditevent SET occurred_at = {bad_time} WHERE id = %s", [corrupt.pk])
    found = verify_chain(personas.tenant_a)
    assert found is not None and (found.seq, found.reason) == (corrupt.seq, "unreadable row")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
@pytest.mark.parametrize(
    ("column", "value", "reported"),
    [
        ("last_hash", INVALID_UTF8, "head mismatch (the head cannot be read: last_hash"),
        ("anchored_hash", INVALID_UTF8, "head mismatch (the head cannot be read: anchored_hash"),
        ("anchored_seq", "'x'", "head mismatch (the head's anchored seq is 'x', not a number)"),
        ("last_seq", INVALID_UTF8, "head mismatch (the head cannot be read: last_seq"),
    ],
    ids=["last-hash", "anchored-hash", "anchored-seq-as-text", "last-seq"],
)
def test_verify_audit_reports_an_unreadable_chain_head_at_the_head_and_goes_on(
    personas: Any, chain: list[AuditEvent], column: str, value: str, reported: str
) -> None:
    _raw(f"UPDATE audit_app_auditchainhead SET {column} = {value} WHERE tenant_id = %s", [personas.tenant_a.pk])
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    acme, *others = out.getvalue().splitlines()
    assert acme.startswith(f"acme: BROKEN at seq {chain[-1].seq + 1}: {reported}"), acme
    assert others == ["globex: OK"]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
@pytest.mark.parametrize("column", ["slug", "name"])
def test_verify_audit_reports_an_unreadable_tenant_row_and_goes_on(
    personas: Any, chain: list[AuditEvent], column: str
) -> None:
    _raw(f"UPDATE tenants_tenant SET {column} = {INVALID_UTF8} WHERE id = %s", [personas.tenant_a.pk])
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    unreadable, *others = out.getvalue().splitlines()
    assert unreadable.startswith(
        f"tenant #{personas.tenant_a.pk}: BROKEN (the tenant row cannot be read: {column} cannot be read ("
    ), unreadable
    # Its chain is still verified (events name their tenant by id), and so are the other tenants.
    assert unreadable.endswith("; its chain holds)"), unreadable
    assert others == ["globex: OK"]


def test_a_lost_connection_still_stops_verification(
    personas: Any, chain: list[AuditEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that went away says nothing about any chain: no BROKEN line, the error propagates."""
    from django.db import OperationalError

    from audit_app import chain as chain_module

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(chain_module.AuditEvent.objects, "filter", gone)
    out = StringIO()
    with pytest.raises(OperationalError):
        call_command("verify_audit", stdout=out)
    assert "BROKEN" not in out.getvalue()


def test_only_a_value_that_cannot_be_converted_counts_as_an_unreadable_row() -> None:
    from django.db import IntegrityError, InternalError, ProgrammingError

    from audit_app.unreadable import cannot_read

    assert cannot_read(ValueError("year 10000 is out of range")) and cannot_read(TypeError("bytes"))
    # A bug, an aborted transaction or a constraint says nothing about the row: not tampering.
    for error in (RuntimeError("bug"), IntegrityError("dup"), InternalError("aborted"), ProgrammingError("sql")):
        assert not cannot_read(error), error
