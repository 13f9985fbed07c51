"""Run histories (per action, per flow) filtered by outcome, version or revision, trigger slot and
time, and paged past the newest 50 with keyset cursors that new runs do not shift."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions_app.models import Action, ActionVersion
from tests.factories import execution_rows
from tests.flow_helpers import custom_action, flow_of

POST_AUTH = "login.post-auth"
PRE_AUTH = "login.pre-credential-check"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ACTION_RUNS = "/t/acme/actions/risk-gate/runs/"
FLOW_RUNS = "/t/acme/flows/login/runs/"


@pytest.fixture
def gate(personas: Any) -> Action:
    action = custom_action(personas.tenant_a, "risk-gate", "return { kind: 'continue' };", [POST_AUTH, PRE_AUTH])
    version = action.versions.get()
    ActionVersion.objects.create(
        action=action,
        **ActionVersion.semver_fields("0.2.0"),
        source=version.source,
        config_schema=version.config_schema,
        compatible_triggers=version.compatible_triggers,
        checksum="other",
    )
    return action


@pytest.fixture
def viewer(client: Any, personas: Any) -> Any:
    client.force_login(personas.viewer)
    return client


def _ids(response: Any) -> list[str]:
    return [
        row.transaction_id if hasattr(row, "transaction_id") else row["transaction_id"]
        for row in response.context["page"].rows
    ]


def _older(response: Any) -> str:
    """The query string of the page's "Older →" link, as the browser would follow it."""
    found = re.search(r'href="\?([^"]*)" rel="next"', response.content.decode())
    assert found, "no link to older runs"
    return found.group(1).replace("&amp;", "&")


def test_an_actions_runs_filter_by_outcome_version_trigger_and_time(viewer: Any, gate: Action, personas: Any) -> None:
    flow = flow_of(personas.tenant_a)
    execution_rows(gate, flow, 4, START)  # tx-00000..3: continue, 0.1.0, post-auth, 09:00:00–03
    execution_rows(gate, flow, 2, START + timedelta(hours=1), outcome="block", transaction_id="blocked")
    execution_rows(gate, flow, 1, START + timedelta(hours=2), action_version="0.2.0", transaction_id="newer")
    execution_rows(gate, flow, 1, START + timedelta(hours=3), trigger=PRE_AUTH, transaction_id="early-slot")

    assert _ids(viewer.get(ACTION_RUNS, {"outcome": "block"})) == ["blocked", "blocked"]
    assert _ids(viewer.get(ACTION_RUNS, {"version": "0.2.0"})) == ["newer"]
    assert _ids(viewer.get(ACTION_RUNS, {"trigger": PRE_AUTH})) == ["early-slot"]
    window = {"since": "2026-12-01T09:00:01", "until": "2026-12-01T09:00:02"}
    assert _ids(viewer.get(ACTION_RUNS, window)) == ["tx-00002", "tx-00001"]  # both ends included
    # An offset is read and turned into UTC.
    assert _ids(viewer.get(ACTION_RUNS, {"since": "2026-12-01T12:00+01:00", "outcome": "continue"})) == [
        "early-slot",
        "newer",
    ]
    # The form shows the filters as chosen.
    page = viewer.get(ACTION_RUNS, {"version": "0.2.0", "since": "2026-12-01T08:00"}).content.decode()
    assert '<option value="0.2.0" selected>' in page and 'value="2026-12-01T08:00"' in page


def test_a_flows_runs_filter_by_shown_outcome_revision_trigger_and_time(
    viewer: Any, gate: Action, personas: Any
) -> None:
    flow = flow_of(personas.tenant_a)
    execution_rows(gate, flow, 3, START)
    # One run of two executions: continue then block shows as block.
    execution_rows(gate, flow, 1, START + timedelta(hours=1), transaction_id="mixed")
    execution_rows(gate, flow, 1, START + timedelta(hours=1), transaction_id="mixed", position=1, outcome="block")
    execution_rows(gate, flow, 1, START + timedelta(hours=2), transaction_id="failing", outcome="error")
    execution_rows(gate, flow, 1, START + timedelta(hours=3), transaction_id="r2", revision_number=2)
    execution_rows(gate, flow, 1, START + timedelta(hours=4), transaction_id="pre", trigger=PRE_AUTH)

    assert _ids(viewer.get(FLOW_RUNS, {"outcome": "block"})) == ["mixed"]
    assert _ids(viewer.get(FLOW_RUNS, {"outcome": "error"})) == ["failing"]
    assert _ids(viewer.get(FLOW_RUNS, {"outcome": "continue", "until": "2026-12-01T09:59"})) == [
        "tx-00002",
        "tx-00001",
        "tx-00000",
    ]
    assert _ids(viewer.get(FLOW_RUNS, {"revision": "r2"})) == ["r2"]
    assert _ids(viewer.get(FLOW_RUNS, {"revision": "2"})) == ["r2"]
    assert _ids(viewer.get(FLOW_RUNS, {"trigger": PRE_AUTH})) == ["pre"]
    assert _ids(viewer.get(FLOW_RUNS, {"since": "2026-12-01T10:30", "outcome": "continue"})) == ["pre", "r2"]


@pytest.mark.parametrize("history", [ACTION_RUNS, FLOW_RUNS])
def test_it_pages_past_the_newest_50_and_new_runs_do_not_shift_the_pages(
    viewer: Any, gate: Action, personas: Any, history: str
) -> None:
    flow = flow_of(personas.tenant_a)
    execution_rows(gate, flow, 120, START)
    first = viewer.get(history)
    assert _ids(first) == [f"tx-{i:05d}" for i in range(119, 69, -1)]
    assert "Older →" in first.content.decode() and "← Newest" not in first.content.decode()
    # Runs recorded while the operator reads page one (one at the very same moment as its last row).
    execution_rows(gate, flow, 5, START + timedelta(days=1), transaction_id="late")
    execution_rows(gate, flow, 1, START + timedelta(seconds=70), transaction_id="tx-00070-b")
    second = viewer.get(history + "?" + _older(first))
    assert _ids(second) == [f"tx-{i:05d}" for i in range(69, 19, -1)]
    third = viewer.get(history + "?" + _older(second))
    assert _ids(third) == [f"tx-{i:05d}" for i in range(19, -1, -1)]
    assert "Older →" not in third.content.decode() and "← Newest" in third.content.decode()


def test_paging_keeps_the_filters(viewer: Any, gate: Action, personas: Any) -> None:
    flow = flow_of(personas.tenant_a)
    execution_rows(gate, flow, 60, START, outcome="block")
    execution_rows(gate, flow, 60, START + timedelta(minutes=5))
    first = viewer.get(ACTION_RUNS, {"outcome": "block"})
    assert "outcome=block" in _older(first)
    second = viewer.get(ACTION_RUNS + "?" + _older(first))
    assert _ids(second) == [f"tx-{i:05d}" for i in range(9, -1, -1)]
    assert {row.outcome for row in second.context["page"].rows} == {"block"}


BAD_FILTERS = [
    ({"outcome": "blocked"}, "outcome", "Choose one of continue, block"),
    ({"version": "9.9.9"}, "version", "This action has no version &#x27;9.9.9&#x27;"),
    ({"trigger": "login.nope"}, "trigger", "is not a trigger slot here"),
    ({"since": "yesterday"}, "since", "Enter a date and time like 2025-01-31T14:30 (UTC)."),
    ({"until": "2026-13-45T99:00"}, "until", "Enter a date and time like"),
    ({"since": "0001-01-01T00:00+14:00"}, "since", "Enter a date and time like"),
    ({"since": "2026-12-02", "until": "2026-12-01"}, "until", "Until must not be before since."),
    ({"cursor": "not-a-cursor"}, "Page", "This page link is not valid"),
    ({"cursor": "W10"}, "Page", "This page link is not valid"),  # base64 of []
    ({"cursor": "WyJydW5zIiwiOTk5OTktMDEtMDEiLCIxIl0"}, "Page", "This page link is not valid"),
    (
        {"cursor": "WyJleGVjdXRpb25zIiwiMjAyNi0xMi0wMVQwOTowMDowMCswMDowMCIsIjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5Il0"},
        "Page",
        "not valid",
    ),
]


@pytest.mark.parametrize(("params", "field", "message"), BAD_FILTERS)
def test_a_bad_filter_is_refused_naming_its_field_and_kept_in_the_form(
    viewer: Any, gate: Action, personas: Any, params: dict[str, str], field: str, message: str
) -> None:
    execution_rows(gate, flow_of(personas.tenant_a), 3, START)
    response = viewer.get(ACTION_RUNS, params)
    assert response.status_code == 400
    page = response.content.decode()
    alert = page[page.index('role="alert"') : page.index("</div>", page.index('role="alert"'))]
    assert f"<strong>{field}</strong>" in alert and message in alert
    assert response.context["page"] is None and "tx-00000" not in page  # nothing listed as if unfiltered
    for name, typed in params.items():
        if name != "cursor":
            assert f'value="{typed}"' in page  # what was typed stays
    if field != "Page":
        assert f'id="filter-{field}"' in page and f'id="filter-{field}-error"' in page


@pytest.mark.parametrize(
    "params",
    [
        {"revision": "r"},
        {"revision": "99999999999999999999"},
        {"revision": "-1"},
        {"revision": "٣"},
        {"cursor": "WyJleGVjdXRpb25zIiwiMjAyNi0xMi0wMVQwOTowMDowMCswMDowMCIsIjEiXQ"},  # another listing's
        {"cursor": "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1td" * 100},
        {"outcome": "\x00"},
        {"since": "\x00"},
    ],
)
def test_a_flows_history_refuses_bad_input_without_a_server_error(
    viewer: Any, gate: Action, personas: Any, params: dict[str, str]
) -> None:
    execution_rows(gate, flow_of(personas.tenant_a), 3, START)
    response = viewer.get(FLOW_RUNS, params)
    assert response.status_code == 400
    problems = response.context["problems"]
    assert problems and all(p["field"] in ("revision", "cursor", "outcome", "since") for p in problems)


@pytest.mark.parametrize("history", [ACTION_RUNS, FLOW_RUNS])
def test_every_page_costs_the_same_queries_with_thousands_of_runs(
    viewer: Any, gate: Action, personas: Any, history: str, django_assert_max_num_queries: Any
) -> None:
    execution_rows(gate, flow_of(personas.tenant_a), 3000, START)
    execution_rows(gate, flow_of(personas.tenant_a), 100, START, outcome="block", transaction_id="b")

    def queries(url: str) -> tuple[int, Any]:
        with CaptureQueriesContext(connection) as captured:
            response = viewer.get(url)
        assert response.status_code == 200
        return len(captured), response

    first_count, first = queries(history)
    second_count, second = queries(history + "?" + _older(first))
    third_count, _ = queries(history + "?" + _older(second) + "&outcome=continue&trigger=" + POST_AUTH)
    assert first_count == second_count == third_count
    with django_assert_max_num_queries(12):
        viewer.get(history + "?" + _older(second))


def test_outsiders_get_404_and_every_member_reads_the_filtered_history(
    client: Any, gate: Action, personas: Any
) -> None:
    execution_rows(gate, flow_of(personas.tenant_a), 3, START)
    client.force_login(personas.outsider)
    assert client.get(ACTION_RUNS, {"outcome": "block"}).status_code == 404
    assert client.get(FLOW_RUNS, {"cursor": "x"}).status_code == 404
    for user in personas.by_role().values():
        client.force_login(user)
        assert client.get(FLOW_RUNS, {"outcome": "continue"}).status_code == 200
