"""Audit retention: the purge deletes only the oldest part of a tenant's chain, anchors the rest so
it still verifies, records itself, and is the only thing that may delete audit events."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit_app.chain import verify_chain
from audit_app.models import DEFAULT_RETENTION_DAYS, AuditChainHead, AuditEvent, AuditRetention
from audit_app.retention import (
    ChainBrokenBeforePurge,
    InvalidRetention,
    plan_purge,
    purge_tenant,
    retention_days,
    set_retention,
)
from audit_app.services import EventDraft, record_many
from orchestration.founding import create_tenant
from tenants.acting import Acting, Actor, RequestMeta

NOW = timezone.now()
ADMIN = Actor("user", "7", "an admin")
PURGE = Acting.platform("purge_audit")
AS_ADMIN = Acting(ADMIN, RequestMeta())


def add_events(tenant: Any, *ages_in_days: float) -> list[AuditEvent]:
    """One event per age, written in the given order (so seq order need not be time order)."""
    drafts = [
        EventDraft(
            tenant=tenant,
            event_type="action.version_saved",
            actor=ADMIN,
            action_slug="geo-block",
            action_version=f"0.{n}.0",
            after={"n": n},
            occurred_at=NOW - timedelta(days=age),
        )
        for n, age in enumerate(ages_in_days, start=1)
    ]
    with transaction.atomic():
        return record_many(drafts)


@pytest.fixture
def initech(db: None) -> Any:
    """A tenant whose whole history is ours: 10 events of 400 days ago, then 5 of the last week."""
    tenant = create_tenant(slug="initech", name="Initech")
    add_events(tenant, *[400] * 10, *[3] * 5)
    return tenant


def seqs(tenant: Any) -> list[int]:
    return list(AuditEvent.objects.for_tenant(tenant).order_by("seq").values_list("seq", flat=True))


def _raw(sql: str, params: list[Any] | None = None) -> None:
    """SQL as a privileged role would run it: on PostgreSQL, replica mode skips the append-only triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


def test_the_purge_deletes_events_older_than_the_retention_and_the_chain_still_verifies(initech: Any) -> None:
    tenth = AuditEvent.objects.get(tenant=initech, seq=10)
    result = purge_tenant(initech, acting=PURGE)
    assert result.purged_events == 10
    assert seqs(initech) == [11, 12, 13, 14, 15, 16]  # five kept events and the purge's own
    head = AuditChainHead.objects.get(tenant=initech)
    assert (head.anchored_seq, head.anchored_hash) == (10, tenth.hash)
    assert AuditEvent.objects.get(tenant=initech, seq=11).prev_hash == tenth.hash
    assert verify_chain(initech) is None


def test_a_purge_leaves_a_tenant_that_never_chose_a_period_on_the_default(initech: Any) -> None:
    purge_tenant(initech, acting=PURGE)
    # Nothing was stored for it, so a later change of the default applies to it too.
    assert not AuditRetention.objects.filter(tenant=initech).exists()
    assert retention_days(initech) == DEFAULT_RETENTION_DAYS


def test_the_purge_records_its_own_event(initech: Any) -> None:
    tenth = AuditEvent.objects.get(tenant=initech, seq=10)
    purge_tenant(initech, acting=PURGE, now=NOW)
    event = AuditEvent.objects.for_tenant(initech).get(type="audit.purged")
    assert (event.seq, event.actor_kind, event.actor_name) == (16, "system", "purge_audit")
    assert event.before == {"through_seq": 0}
    assert event.after == {
        "purged_events": 10,
        "through_seq": 10,
        "anchored_hash": tenth.hash,
        "retention_days": 365,
        "cutoff": (NOW - timedelta(days=365)).isoformat(),
    }


def test_the_purge_deletes_only_a_prefix_of_the_chain(db: None) -> None:
    tenant = create_tenant(slug="initech", name="Initech")
    # The third event is recent: it and everything after it stay, old or not, so no hole opens.
    add_events(tenant, 400, 400, 2, 400, 400)
    assert purge_tenant(tenant, acting=PURGE).purged_events == 2
    assert seqs(tenant) == [3, 4, 5, 6]
    assert verify_chain(tenant) is None


def test_a_purge_with_nothing_old_enough_changes_nothing(initech: Any) -> None:
    purge_tenant(initech, acting=PURGE)
    before = seqs(initech)
    result = purge_tenant(initech, acting=PURGE)
    assert (result.purged_events, result.purge_event) == (0, None)
    assert seqs(initech) == before


def test_a_tenant_that_keeps_events_forever_is_never_purged(initech: Any) -> None:
    set_retention(initech, None, acting=AS_ADMIN)
    assert purge_tenant(initech, acting=PURGE).purged_events == 0
    assert seqs(initech)[0] == 1


def test_a_later_purge_moves_the_anchor_again_even_past_the_earlier_purge_event(initech: Any) -> None:
    purge_tenant(initech, acting=PURGE)
    a_year_later = NOW + timedelta(days=400)
    result = purge_tenant(initech, acting=PURGE, now=a_year_later)
    assert result.purged_events == 6  # the five kept events and the first purge event
    assert seqs(initech) == [17]
    head = AuditChainHead.objects.get(tenant=initech)
    assert head.anchored_seq == 16
    assert verify_chain(initech) is None


def test_max_events_purges_in_steps_that_each_verify(initech: Any) -> None:
    first = purge_tenant(initech, acting=PURGE, max_events=4)
    assert (first.purged_events, first.plan.through_seq) == (4, 4)
    assert verify_chain(initech) is None
    second = purge_tenant(initech, acting=PURGE, max_events=100)
    assert (second.purged_events, second.plan.through_seq) == (6, 10)
    assert verify_chain(initech) is None
    assert AuditEvent.objects.for_tenant(initech).filter(type="audit.purged").count() == 2


def test_the_purge_leaves_other_tenants_alone(personas: Any, initech: Any) -> None:
    add_events(personas.tenant_b, 400, 400)
    before = seqs(personas.tenant_b)
    purge_tenant(initech, acting=PURGE)
    assert seqs(personas.tenant_b) == before
    assert verify_chain(personas.tenant_b) is None


def test_tampering_with_the_first_kept_event_is_still_detected(initech: Any) -> None:
    purge_tenant(initech, acting=PURGE)
    _raw("UPDATE audit_app_auditevent SET action_version = '9.9.9' WHERE tenant_id = %s AND seq = 11", [initech.pk])
    broken = verify_chain(initech)
    assert broken is not None and (broken.seq, broken.reason) == (11, "hash mismatch")


def test_deleting_the_first_kept_event_is_detected(initech: Any) -> None:
    purge_tenant(initech, acting=PURGE)
    _raw("DELETE FROM audit_app_auditevent WHERE tenant_id = %s AND seq = 11", [initech.pk])
    broken = verify_chain(initech)
    assert broken is not None and (broken.seq, broken.reason) == (11, "gap")


def test_moving_the_anchor_by_hand_to_hide_deleted_events_is_detected(initech: Any) -> None:
    purge_tenant(initech, acting=PURGE)
    eleventh = AuditEvent.objects.get(tenant=initech, seq=11)
    # Delete a kept event and move the anchor over it, as if a purge had done it.
    _raw("DELETE FROM audit_app_auditevent WHERE tenant_id = %s AND seq = 11", [initech.pk])
    AuditChainHead.objects.filter(tenant=initech).update(anchored_seq=11, anchored_hash=eleventh.hash)
    broken = verify_chain(initech)
    assert broken is not None and (broken.seq, broken.reason) == (11, "anchor mismatch")


def test_an_anchor_without_any_purge_event_is_detected(initech: Any) -> None:
    tenth = AuditEvent.objects.get(tenant=initech, seq=10)
    _raw("DELETE FROM audit_app_auditevent WHERE tenant_id = %s AND seq <= 10", [initech.pk])
    AuditChainHead.objects.filter(tenant=initech).update(anchored_seq=10, anchored_hash=tenth.hash)
    broken = verify_chain(initech)
    assert broken is not None and (broken.seq, broken.reason) == (10, "anchor mismatch")


def test_an_event_at_or_before_the_anchor_is_detected(initech: Any) -> None:
    purge_tenant(initech, acting=PURGE, max_events=3)
    # The anchor claims events up to 5 are gone, but 4 and 5 are still there.
    fifth = AuditEvent.objects.get(tenant=initech, seq=5)
    AuditChainHead.objects.filter(tenant=initech).update(anchored_seq=5, anchored_hash=fifth.hash)
    broken = verify_chain(initech)
    assert broken is not None and (broken.seq, broken.reason) == (4, "anchor mismatch")


def test_the_purge_refuses_to_delete_events_that_do_not_verify(initech: Any) -> None:
    _raw("UPDATE audit_app_auditevent SET action_slug = 'other' WHERE tenant_id = %s AND seq = 4", [initech.pk])
    with pytest.raises(ChainBrokenBeforePurge) as refusal:
        purge_tenant(initech, acting=PURGE)
    assert (refusal.value.chain_break.seq, refusal.value.chain_break.reason) == (4, "hash mismatch")
    assert seqs(initech) == list(range(1, 16))
    assert AuditChainHead.objects.get(tenant=initech).anchored_seq == 0


def test_purge_audit_dry_run_reports_and_deletes_nothing(personas: Any, initech: Any) -> None:
    out = StringIO()
    call_command("purge_audit", "--dry-run", stdout=out)
    assert out.getvalue().splitlines() == [
        "acme: would purge 0 events (keeps 365 days)",
        "globex: would purge 0 events (keeps 365 days)",
        "initech: would purge 10 events (seq 1–10) (keeps 365 days)",
        "security log: would purge 0 entries older than the retention",
    ]
    assert seqs(initech) == list(range(1, 16))
    assert not AuditEvent.objects.filter(type="audit.purged").exists()
    assert AuditChainHead.objects.get(tenant=initech).anchored_seq == 0


def test_purge_audit_purges_one_tenant_and_verify_audit_reports_the_anchor(personas: Any, initech: Any) -> None:
    add_events(personas.tenant_b, 400)
    out = StringIO()
    call_command("purge_audit", "--tenant", "initech", stdout=out)
    assert out.getvalue() == "initech: purged 10 events (seq 1–10) (keeps 365 days); chain anchored at seq 10\n"
    anchored_hash = AuditChainHead.objects.get(tenant=initech).anchored_hash
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().splitlines() == [
        "acme: OK",
        "globex: OK",
        f"initech: OK (events 1–10 purged; chain anchored at seq 10, hash {anchored_hash})",
    ]
    assert AuditEvent.objects.for_tenant(personas.tenant_b).filter(type="action.version_saved").count() == 1


@pytest.mark.usefixtures("without_personas")  # the command reports on every tenant
def test_purge_audit_exits_1_when_a_chain_is_broken(initech: Any) -> None:
    _raw("UPDATE audit_app_auditevent SET action_slug = 'other' WHERE tenant_id = %s AND seq = 4", [initech.pk])
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("purge_audit", stdout=out)
    assert exit_info.value.code == 1
    assert out.getvalue().splitlines() == [
        "initech: REFUSED, the chain is broken at seq 4: hash mismatch (the event's fields were changed); "
        "investigate before purging",
        "security log: purged 0 entries older than the retention",
    ]


def test_the_plan_of_a_tenant_without_events_is_empty(db: None) -> None:
    tenant = create_tenant(slug="initech", name="Initech")
    assert plan_purge(tenant).event_count == 0
    assert purge_tenant(tenant, acting=PURGE).purged_events == 0


def test_changing_the_retention_is_audited(initech: Any) -> None:
    assert retention_days(initech) == 365
    set_retention(initech, 120, acting=AS_ADMIN)
    set_retention(initech, 120, acting=AS_ADMIN)  # no change, no event
    set_retention(initech, None, acting=AS_ADMIN)
    events = AuditEvent.objects.for_tenant(initech).filter(type="audit.retention_changed").order_by("seq")
    assert [(e.before, e.after, e.actor_name) for e in events] == [
        ({"retention_days": 365}, {"retention_days": 120}, "an admin"),
        ({"retention_days": 120}, {"retention_days": None}, "an admin"),
    ]
    assert AuditRetention.objects.get(tenant=initech).days is None
    assert verify_chain(initech) is None


@pytest.mark.parametrize("days", [0, 6, 89, 3651, -1])
def test_a_retention_outside_the_allowed_range_is_refused(initech: Any, days: int) -> None:
    with pytest.raises(InvalidRetention):
        set_retention(initech, days, acting=AS_ADMIN)
    assert retention_days(initech) == 365


postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers exist on PostgreSQL only")


def _refused(sql: str, params: list[Any]) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError as error:
        return "append-only" in str(error)
    return False


@postgresql_only
def test_raw_sql_delete_is_still_refused_outside_a_purge(initech: Any) -> None:
    assert _refused("DELETE FROM audit_app_auditevent WHERE tenant_id = %s AND seq = 1", [initech.pk])
    purge_tenant(initech, acting=PURGE)
    # Even later in the purge's own transaction (the test's), the flag is down again.
    assert _refused("DELETE FROM audit_app_auditevent WHERE tenant_id = %s AND seq = 12", [initech.pk])
    assert _refused("UPDATE audit_app_auditevent SET target = 'x' WHERE tenant_id = %s", [initech.pk])
    assert seqs(initech) == [11, 12, 13, 14, 15, 16]


@postgresql_only
def test_the_purge_flag_allows_no_update(initech: Any) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL actions_console.audit_purge = 'on'")
        assert _refused("UPDATE audit_app_auditevent SET target = 'x' WHERE tenant_id = %s", [initech.pk])
        cursor.execute("SET LOCAL actions_console.audit_purge = 'off'")


# The retention page and form (/t/<tenant>/audit/retention/).

RETENTION_URL = "/t/acme/audit/retention/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_it_shows_every_member_the_retention_and_only_owners_the_form(client: Any, personas: Any) -> None:
    for role, sees_form in (("viewer", False), ("editor", False), ("admin", False), ("owner", True)):
        client.force_login(personas.by_role()[role])
        response = client.get(RETENTION_URL)
        assert response.status_code == 200
        assert b"keeps its audit events for <strong>365 days</strong>" in response.content
        assert (b"Save retention" in response.content) is sees_form, role


def test_the_audit_log_links_to_the_retention_panel(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get("/t/acme/audit/")
    assert b'hx-get="/t/acme/audit/retention/"' in response.content
    assert b'href="/t/acme/audit/retention/"' in response.content


def test_an_owner_changes_the_retention_and_it_is_audited(client: Any, personas: Any) -> None:
    client.force_login(personas.owner)
    response = client.post(RETENTION_URL, {"policy": "days", "days": "90"}, follow=True)
    assert response.status_code == 200
    assert b"Audit events are now kept 90 days." in response.content
    assert retention_days(personas.tenant_a) == 90
    event = AuditEvent.objects.for_tenant(personas.tenant_a).get(type="audit.retention_changed")
    assert (event.actor_name, event.before, event.after) == ("a-owner", {"retention_days": 365}, {"retention_days": 90})
    assert event.ip == "127.0.0.1"


def test_an_owner_chooses_forever_over_htmx_and_gets_the_panel_back(client: Any, personas: Any) -> None:
    client.force_login(personas.owner)
    response = client.post(RETENTION_URL, {"policy": "forever", "days": "90"}, **HTMX)
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<section id="retention"')
    assert b"Saved: audit events are now kept forever." in response.content
    assert retention_days(personas.tenant_a) is None


@pytest.mark.parametrize(
    ("posted", "field", "message"),
    [
        ({"policy": "days", "days": "3"}, "Days to keep", "Keep events for at least 90 days."),
        ({"policy": "days", "days": "4000"}, "Days to keep", "At most 3650 days (ten years)"),
        ({"policy": "days", "days": "a year"}, "Days to keep", "Enter a whole number of days, such as 365."),
        ({"policy": "days", "days": ""}, "Days to keep", "Enter how many days to keep events, or choose Forever."),
        ({"days": "30"}, "Keep audit events", "Choose whether to keep events for a number of days or forever."),
        ({"policy": "always", "days": "30"}, "Keep audit events", "Select a valid choice."),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_kept(
    client: Any, personas: Any, posted: dict[str, str], field: str, message: str
) -> None:
    client.force_login(personas.owner)
    response = client.post(RETENTION_URL, posted)
    assert response.status_code == 422
    html = response.content.decode()
    assert f"<strong>{field}</strong>: {message}" in html
    if posted.get("days"):
        assert f'value="{posted["days"]}"' in html
    assert retention_days(personas.tenant_a) == 365
    assert not AuditEvent.objects.filter(type="audit.retention_changed").exists()


def test_bad_input_over_htmx_comes_back_in_the_panel(client: Any, personas: Any) -> None:
    client.force_login(personas.owner)
    response = client.post(RETENTION_URL, {"policy": "days", "days": "3"}, **HTMX)
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert b"<strong>Days to keep</strong>: Keep events for at least 90 days." in response.content
    assert b'value="3"' in response.content


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_viewers_editors_and_admins_may_not_change_the_retention(client: Any, personas: Any, role: str) -> None:
    client.force_login(personas.by_role()[role])
    assert client.post(RETENTION_URL, {"policy": "forever"}).status_code == 403
    assert retention_days(personas.tenant_a) == 365


def test_an_outsider_gets_404_and_changes_nothing(client: Any, personas: Any) -> None:
    client.force_login(personas.outsider)
    assert client.get(RETENTION_URL).status_code == 404
    assert client.post(RETENTION_URL, {"policy": "forever"}).status_code == 404
    assert retention_days(personas.tenant_a) == 365


def test_anonymous_visitors_are_sent_to_sign_in(client: Any, personas: Any) -> None:
    response = client.post(RETENTION_URL, {"policy": "forever"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_purge_and_concurrent_writers_leave_one_verifiable_chain(db: None) -> None:
    from audit_app.services import record
    from tests.threads import all_at_once

    tenant = create_tenant(slug="initech", name="Initech")
    add_events(tenant, *[400] * 3000)

    def write_or_purge(thread: int) -> None:
        if thread == 4:
            purge_tenant(tenant, acting=PURGE)
            return
        for n in range(20):
            with transaction.atomic():
                record(tenant=tenant, event_type="flow.action_executed", actor=Actor.system(), target=f"{thread}-{n}")

    errors = all_at_once(5, write_or_purge)
    assert errors == []
    assert AuditChainHead.objects.get(tenant=tenant).anchored_seq == 3000
    assert AuditEvent.objects.for_tenant(tenant).filter(type="flow.action_executed").count() == 80
    assert verify_chain(tenant) is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_owner_opens_the_retention_panel_on_the_audit_log_and_shortens_it(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    from tests.browser import sign_in

    sign_in(page, live_server, "a-owner")
    page.wait_for_url("**/t/acme/**")
    page.goto(f"{live_server.url}/t/acme/audit/")
    page.locator("summary", has_text="Retention").click()
    days = page.get_by_label("Days to keep")
    expect(days).to_have_value("365")  # loaded into the panel by htmx
    days.fill("3")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Save retention").click()
    expect(page.locator("#retention .form-errors")).to_contain_text("Keep events for at least 90 days.")
    expect(page.get_by_label("Days to keep")).to_have_value("3")
    page.get_by_label("Days to keep").fill("120")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Save retention").click()
    expect(page.locator("#retention")).to_contain_text("Saved: audit events are now kept 120 days.")
    assert page.url == f"{live_server.url}/t/acme/audit/"  # never left the log
    assert retention_days(personas.tenant_a) == 120
    assert console_errors == []


def test_a_contractor_with_one_object_does_not_see_the_tenant_retention(client: Any, personas: Any) -> None:
    from tenants.permissions import grant_object_to_operator
    from tests.factories import add_custom_action, make_operator

    contractor = make_operator("contractor")
    grant_object_to_operator(contractor, "view_action", add_custom_action(personas.tenant_a, "contracted"))
    client.force_login(contractor)
    assert client.get(RETENTION_URL).status_code == 404
    assert client.post(RETENTION_URL, {"policy": "forever"}).status_code == 404


def test_purge_audit_refuses_a_tenant_with_an_unreadable_row_and_goes_on(personas: Any, initech: Any) -> None:
    # Old enough to be purged, but not a time the ORM can read.
    bad_time = "'-infinity'" if connection.vendor == "postgresql" else "'2000-13-45 25:61:00'"
    _raw(f"UPDATE audit_app_auditevent SET occurred_at = {bad_time} WHERE tenant_id = %s AND seq = 4", [initech.pk])
    later = create_tenant(slug="umbrella", name="Umbrella")  # after initech in slug order
    add_events(later, 400, 3)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("purge_audit", stdout=out)
    assert exit_info.value.code == 1
    lines = out.getvalue().splitlines()
    assert lines[2].startswith("initech: REFUSED, the chain is broken at seq 4: unreadable row (occurred_at")
    assert lines[3] == "umbrella: purged 1 event (seq 1–1) (keeps 365 days); chain anchored at seq 1"
    assert seqs(initech) == list(range(1, 16))


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
@pytest.mark.parametrize(
    ("table", "column", "value", "refused"),
    [
        ("audit_app_auditevent", "actor_name", "CAST(x'61ff62' AS TEXT)", "seq 4: unreadable row (actor_name"),
        ("audit_app_auditevent", "hash", "CAST(x'61ff62' AS TEXT)", "seq 4: unreadable row (hash"),
        ("audit_app_auditchainhead", "last_hash", "CAST(x'61ff62' AS TEXT)", "seq 16: head mismatch (the head cannot"),
        ("audit_app_auditchainhead", "anchored_seq", "'x'", "seq 16: head mismatch (the head's anchored seq is 'x'"),
    ],
    ids=["event-text", "event-hash", "head-hash", "head-anchor"],
)
def test_purge_audit_refuses_a_tenant_with_text_it_cannot_decode_and_goes_on(
    personas: Any, initech: Any, table: str, column: str, value: str, refused: str
) -> None:
    where = "tenant_id = %s AND seq = 4" if table == "audit_app_auditevent" else "tenant_id = %s"
    _raw(f"UPDATE {table} SET {column} = {value} WHERE {where}", [initech.pk])
    later = create_tenant(slug="umbrella", name="Umbrella")  # after initech in slug order
    add_events(later, 400, 3)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("purge_audit", stdout=out)
    assert exit_info.value.code == 1
    lines = out.getvalue().splitlines()
    assert lines[2].startswith(f"initech: REFUSED, the chain is broken at {refused}"), lines
    assert lines[3] == "umbrella: purged 1 event (seq 1–1) (keeps 365 days); chain anchored at seq 1"
    assert AuditEvent.objects.filter(tenant=initech).count() == 15


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
def test_purge_audit_refuses_a_tenant_whose_row_cannot_be_read_and_goes_on(personas: Any, initech: Any) -> None:
    _raw("UPDATE tenants_tenant SET name = CAST(x'61ff62' AS TEXT) WHERE id = %s", [initech.pk])
    later = create_tenant(slug="umbrella", name="Umbrella")
    add_events(later, 400, 3)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("purge_audit", stdout=out)
    assert exit_info.value.code == 1
    lines = out.getvalue().splitlines()
    assert f"tenant #{initech.pk}: REFUSED, the tenant row cannot be read: name cannot be read (" in "\n".join(lines)
    assert "umbrella: purged 1 event (seq 1–1) (keeps 365 days); chain anchored at seq 1" in lines
    assert AuditEvent.objects.filter(tenant=initech).count() == 15
