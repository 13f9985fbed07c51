"""The audit timeline: runs per bucket by outcome, change markers, filters and access."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.http import QueryDict

from audit_app.services import EventDraft, record_many
from flows_app.models import ActionExecution, Flow
from orchestration.timeline import TimelineWindow, count_runs
from tenants.acting import Actor
from tests.factories import add_custom_action

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EDDIE = Actor("user", "7", "eddie")


def timeline_url(tenant: str = "acme", **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/t/{tenant}/audit/timeline/" + (f"?{query}" if query else "")


def window_params(**extra: str) -> dict[str, str]:
    return {"since": "2025-03-01T12:00", "until": "2025-03-01T13:00", **extra}


def add_runs(tenant: Any, flow: Flow, at: datetime, outcome: str, count: int = 1) -> None:
    action = add_custom_action(tenant, f"gate-{uuid.uuid4().hex[:8]}")
    ActionExecution.objects.bulk_create(
        ActionExecution(
            tenant=tenant,
            flow=flow,
            revision_number=1,
            transaction_id=uuid.uuid4().hex,
            trigger="login.post-auth",
            binding_key=uuid.uuid4(),
            action=action,
            action_version="0.1.0",
            position=0,
            outcome=outcome,
            duration_ms=1.0,
            occurred_at=at,
        )
        for _ in range(count)
    )


def add_change(tenant: Any, event_type: str, at: datetime, flow_slug: str = "login", **fields: Any) -> Any:
    with transaction.atomic():
        (event,) = record_many(
            [
                EventDraft(
                    tenant=tenant,
                    event_type=event_type,
                    actor=EDDIE,
                    flow_slug=flow_slug,
                    occurred_at=at,
                    **{"action_slug": "block-by-risk-score", **fields},
                )
            ]
        )
    return event


def other_flow(tenant: Any) -> Flow:
    existing = Flow.objects.filter(tenant=tenant).exclude(slug="login").first()
    return existing or Flow.objects.create(tenant=tenant, slug="signup", name="Sign-up", kind="login")


@pytest.fixture
def login(personas: Any) -> Flow:
    return Flow.objects.get(tenant=personas.tenant_a, slug="login")


def test_it_counts_runs_per_bucket_and_outcome(personas: Any, login: Flow) -> None:
    a = personas.tenant_a
    add_runs(a, login, T0 + timedelta(minutes=1), "continue", 3)
    add_runs(a, login, T0 + timedelta(minutes=9, seconds=59), "block", 2)
    add_runs(a, login, T0 + timedelta(minutes=10), "block", 4)  # the next bucket starts here
    add_runs(a, login, T0 + timedelta(minutes=25), "demand_mfa")
    add_runs(a, login, T0 + timedelta(minutes=59, seconds=30), "error")
    add_runs(a, login, T0 + timedelta(minutes=61), "continue", 5)  # after the window
    add_runs(personas.tenant_b, Flow.objects.get(tenant=personas.tenant_b, slug="login"), T0, "block", 7)
    window = TimelineWindow.from_params(QueryDict("since=2025-03-01T12:00&until=2025-03-01T13:00"), now=T0)
    assert count_runs(a, window) == {
        T0: {"continue": 3, "block": 2},
        T0 + timedelta(minutes=10): {"block": 4},
        T0 + timedelta(minutes=20): {"demand_mfa": 1},
        T0 + timedelta(minutes=50): {"error": 1},
    }
    hourly = TimelineWindow.from_params(QueryDict("since=2025-03-01T12:00&until=2025-03-01T14:00&bucket=60"), now=T0)
    assert count_runs(a, hourly) == {
        T0: {"continue": 3, "block": 6, "demand_mfa": 1, "error": 1},
        T0 + timedelta(hours=1): {"continue": 5},
    }
    five = TimelineWindow.from_params(QueryDict("since=2025-03-01T12:00&until=2025-03-01T12:15&bucket=5"), now=T0)
    assert count_runs(a, five) == {
        T0: {"continue": 3},
        T0 + timedelta(minutes=5): {"block": 2},
        T0 + timedelta(minutes=10): {"block": 4},
    }


def test_it_defaults_to_the_last_48_hours_in_10_minute_buckets() -> None:
    now = datetime(2025, 3, 3, 9, 17, 30, tzinfo=UTC)
    window = TimelineWindow.from_params(QueryDict(""), now=now)
    assert (window.since, window.until, window.bucket_minutes) == (now - timedelta(hours=48), now, 10)
    assert window.bucket_starts()[0] == datetime(2025, 3, 1, 9, 10, tzinfo=UTC)
    assert len(window.bucket_starts()) == 289
    coarse = TimelineWindow.from_params(QueryDict("bucket=1"), now=now)
    assert coarse.bucket_minutes == 5 and coarse.notices
    wrong = TimelineWindow.from_params(QueryDict("bucket=7&since=yesterday"), now=now)
    assert {p["field"] for p in wrong.problems} == {"bucket", "since"}
    assert wrong.bucket_minutes == 10


def test_it_draws_bars_with_tooltips_and_links_to_their_runs(client: Any, personas: Any, login: Flow) -> None:
    add_runs(personas.tenant_a, login, T0 + timedelta(minutes=12), "block", 6)
    add_runs(personas.tenant_a, login, T0 + timedelta(minutes=13), "continue", 2)
    client.force_login(personas.viewer)
    response = client.get(timeline_url(**window_params()))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<svg" in body and "<script" not in body.split("<svg", 1)[1].split("</svg>", 1)[0]
    bars = re.findall(r'<a class="tl-bar" href="([^"]+)"[^>]*data-total="(\d+)" data-block="(\d+)"', body)
    assert len(bars) == 1
    href, total, blocked = bars[0]
    assert (total, blocked) == ("8", "6")
    # Until a millisecond before the next bucket: the list holds exactly the runs the bar counts.
    assert href == (
        "/t/acme/audit/?type=flow.action_executed&amp;since=2025-03-01T12%3A10%3A00"
        "&amp;until=2025-03-01T12%3A19%3A59.999"
    )
    assert "2025-03-01 12:10–12:20 UTC: 8 runs (Continue 2, Block 6, Demand MFA 0, Redirect 0, Error 0)" in body
    for outcome in ("continue", "block", "demand_mfa", "redirect", "error"):
        assert f'id="tl-pat-{outcome}"' in body
    assert "Highest block rates" in body and "6 (75%)" in body


def test_the_bar_link_lists_that_buckets_runs_in_the_audit_log(client: Any, personas: Any) -> None:
    a = personas.tenant_a
    for minute, slug in ((9, "run-early"), (12, "run-inside"), (20, "run-edge"), (21, "run-late")):
        add_change(a, "flow.action_executed", T0 + timedelta(minutes=minute), action_slug=slug)
    client.force_login(personas.viewer)
    body = client.get(
        "/t/acme/audit/?type=flow.action_executed&since=2025-03-01T12%3A10%3A00&until=2025-03-01T12%3A19%3A59.999"
    ).content.decode()
    assert "run-inside" in body
    # 12:20:00 is the next bucket's: the bar does not count it, so its list does not show it.
    assert "run-early" not in body and "run-late" not in body and "run-edge" not in body


def _segment_links(body: str) -> dict[str, tuple[str, str]]:
    """Each outcome's part of the one bar drawn: its link and its run count."""
    found = re.findall(r'<a class="tl-seg-link" href="([^"]+)"[^>]*data-outcome="(\w+)" data-runs="(\d+)"', body)
    return {outcome: (href.replace("&amp;", "&"), runs) for href, outcome, runs in found}


def test_each_outcome_of_a_bar_lists_that_outcomes_runs(client: Any, personas: Any, login: Flow) -> None:
    a = personas.tenant_a
    add_runs(a, login, T0 + timedelta(minutes=12), "block", 3)
    add_runs(a, login, T0 + timedelta(minutes=13), "continue", 2)
    add_runs(a, login, T0 + timedelta(minutes=14), "demand_mfa", 1)
    for minute, slug, outcome in (
        (12, "blocked-inside", "block"),
        (13, "passed-inside", "continue"),
        (14, "mfa-inside", "demand_mfa"),
        (20, "blocked-next-bucket", "block"),
    ):
        add_change(
            a, "flow.action_executed", T0 + timedelta(minutes=minute), action_slug=slug, after={"outcome": outcome}
        )
    client.force_login(personas.viewer)
    segments = _segment_links(client.get(timeline_url(**window_params())).content.decode())
    assert {outcome: runs for outcome, (_, runs) in segments.items()} == {
        "block": "3",
        "continue": "2",
        "demand_mfa": "1",
    }
    blocked = client.get(segments["block"][0])
    assert blocked.status_code == 200 and blocked.context["problems"] == []
    listed = blocked.content.decode()
    assert "blocked-inside" in listed
    assert "passed-inside" not in listed and "mfa-inside" not in listed and "blocked-next-bucket" not in listed
    mfa = client.get(segments["demand_mfa"][0]).content.decode()
    assert "mfa-inside" in mfa and "blocked-inside" not in mfa
    # The audit log's outcome filter offers what it was asked for.
    assert '<option value="demand_mfa" selected>' in mfa


def test_the_highest_block_rates_table_links_to_the_blocked_runs(client: Any, personas: Any, login: Flow) -> None:
    add_runs(personas.tenant_a, login, T0 + timedelta(minutes=31), "block", 9)
    add_runs(personas.tenant_a, login, T0 + timedelta(minutes=32), "continue", 1)
    client.force_login(personas.viewer)
    body = client.get(timeline_url(**window_params(flow="login"))).content.decode()
    top = body[body.index('class="data tl-top"') :]
    assert "until=2025-03-01T12%3A39%3A59.999&amp;flow=login&amp;outcome=block" in top


def test_the_audit_log_refuses_an_unknown_outcome_naming_it(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get("/t/acme/audit/", {"outcome": "blocked"})
    assert response.context["problems"] == [
        {
            "field": "outcome",
            "message": "Unknown outcome 'blocked': choose one of continue, block, demand_mfa, redirect, error.",
        }
    ]


def test_it_marks_changes_and_links_them_to_their_diff(client: Any, personas: Any, login: Flow) -> None:
    a = personas.tenant_a
    add_runs(a, login, T0 + timedelta(minutes=31), "block", 9)
    updated = add_change(
        a, "flow.action_updated", T0 + timedelta(minutes=28), before={"threshold": 80}, after={"threshold": 20}
    )
    attached = add_change(a, "flow.action_attached", T0 + timedelta(minutes=5))
    add_change(a, "flow.action_updated", T0 - timedelta(minutes=5))  # before the window
    add_change(a, "action.version_saved", T0 + timedelta(minutes=6))  # not a flow change
    client.force_login(personas.viewer)
    body = client.get(timeline_url(**window_params())).content.decode()
    markers = re.findall(r'<a class="tl-marker [^"]*" href="([^"]+)" data-type="([^"]+)"', body)
    assert markers == [
        (f"/t/acme/audit/{attached.pk}/", "flow.action_attached"),
        (f"/t/acme/audit/{updated.pk}/", "flow.action_updated"),
    ]
    # The change table, and the top bucket names the change just before it.
    top = body.split("Highest block rates", 1)[1].split("</table>", 1)[0]
    assert "12:30–12:40" in top and f"/t/acme/audit/{updated.pk}/" in top and "eddie" in top
    assert client.get(f"/t/acme/audit/{updated.pk}/").status_code == 200


def test_it_filters_by_flow(client: Any, personas: Any, login: Flow) -> None:
    a = personas.tenant_a
    signup = other_flow(a)
    add_runs(a, login, T0 + timedelta(minutes=1), "block", 3)
    add_runs(a, signup, T0 + timedelta(minutes=1), "continue", 4)
    add_change(a, "flow.action_updated", T0 + timedelta(minutes=2), flow_slug=signup.slug)
    add_change(a, "flow.action_updated", T0 + timedelta(minutes=3), flow_slug="login")
    client.force_login(personas.viewer)
    body = client.get(timeline_url(**window_params(flow="login"))).content.decode()
    assert re.findall(r'data-total="(\d+)" data-block="(\d+)"', body) == [("3", "3")]
    assert len(re.findall(r'class="tl-marker ', body)) == 1
    assert "&amp;flow=login" in body
    everything = client.get(timeline_url(**window_params())).content.decode()
    assert re.findall(r'data-total="(\d+)" data-block="(\d+)"', everything) == [("7", "3")]
    assert len(re.findall(r'class="tl-marker ', everything)) == 2


def test_it_shows_an_empty_state(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    body = client.get(timeline_url(**window_params())).content.decode()
    assert "No action runs or flow changes in this window" in body


@pytest.mark.parametrize("role", ["owner", "admin", "editor", "viewer"])
def test_every_member_reads_it(client: Any, personas: Any, role: str) -> None:
    client.force_login(personas.by_role()[role])
    assert client.get(timeline_url()).status_code == 200


def test_it_is_404_for_outsiders(client: Any, personas: Any, login: Flow) -> None:
    add_runs(personas.tenant_a, login, T0, "block", 3)
    client.force_login(personas.outsider)
    assert client.get(timeline_url(**window_params())).status_code == 404


def test_the_audit_log_links_to_it(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    assert 'href="/t/acme/audit/timeline/"' in client.get("/t/acme/audit/").content.decode()


def test_it_runs_a_constant_number_of_queries(
    client: Any, personas: Any, login: Flow, django_assert_max_num_queries: Any
) -> None:
    a = personas.tenant_a
    add_runs(a, login, T0, "continue")
    action = add_custom_action(a, "busy")
    ActionExecution.objects.bulk_create(
        ActionExecution(
            tenant=a,
            flow=login,
            revision_number=1,
            transaction_id=str(i),
            trigger="login.post-auth",
            binding_key=uuid.uuid4(),
            action=action,
            action_version="0.1.0",
            position=0,
            outcome=("continue", "block", "redirect", "demand_mfa", "error")[i % 5],
            duration_ms=1.0,
            occurred_at=T0 + timedelta(seconds=i),
        )
        for i in range(3000)
    )
    with transaction.atomic():
        record_many(
            [
                EventDraft(a, "flow.action_updated", EDDIE, flow_slug="login", occurred_at=T0 + timedelta(minutes=i))
                for i in range(50)
            ]
        )
    client.force_login(personas.viewer)
    with django_assert_max_num_queries(8):
        response = client.get(timeline_url(**window_params()))
    assert response.status_code == 200
    assert len(re.findall(r'class="tl-marker ', response.content.decode())) == 50


def test_switching_a_flow_off_is_a_marker_named_by_the_flow(client: Any, personas: Any, login: Flow) -> None:
    a = personas.tenant_a
    disabled = add_change(
        a,
        "flow.disabled",
        T0 + timedelta(minutes=10),
        action_slug="",
        before={"enabled": True},
        after={"enabled": False},
    )
    client.force_login(personas.viewer)
    body = client.get(timeline_url(**window_params())).content.decode()
    markers = re.findall(r'<a class="tl-marker [^"]*" href="([^"]+)" data-type="([^"]+)"', body)
    assert markers == [(f"/t/acme/audit/{disabled.pk}/", "flow.disabled")]
    assert "disabled flow login" in body
    assert "disabled (thick dashed)" in body  # the legend says how to tell it apart without colour
