"""In Debian chromium: find yesterday's burst of blocked sign-ins on the timeline, see the change
just before it, and open that change's diff (the demo incident, contract §10)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orchestration.demo_history import incident_window, seed_demo_history
from tests.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_finds_the_change_behind_a_spike_of_blocks(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    assert seed_demo_history(personas.tenant_a, editor=personas.editor, admin=personas.admin)
    change_at, burst_at, rollback_at = incident_window(timezone.now())

    sign_in(page, live_server, "a-viewer")
    page.wait_for_url("**/t/acme/**")
    # The timeline is one click away from any page of the tenant.
    page.get_by_role("navigation", name="Authentication").get_by_role("link", name="Timeline").click()
    page.wait_for_url("**/t/acme/audit/timeline/")
    expect(
        page.get_by_role("navigation", name="Authentication").get_by_role("link", name="Timeline")
    ).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()

    # The tallest pile of blocks is in the incident, after the threshold went down.
    tallest = page.evaluate(
        """() => {
          const bars = [...document.querySelectorAll('a.tl-bar')];
          bars.sort((a, b) => Number(b.dataset.block) - Number(a.dataset.block));
          const top = bars[0];
          return {start: top.dataset.start, block: Number(top.dataset.block), href: top.getAttribute('href')};
        }"""
    )
    spike_start = datetime.fromisoformat(tallest["start"]).astimezone(UTC)
    assert burst_at.replace(minute=0, second=0) <= spike_start < rollback_at
    assert "type=flow.action_executed" in tallest["href"]

    # The flow.action_updated marker just before it is the 13:58 change.
    markers = page.locator('a.tl-marker[data-type="flow.action_updated"]')
    before_spike = [
        i
        for i in range(markers.count())
        if datetime.fromisoformat(markers.nth(i).get_attribute("data-at")).astimezone(UTC) < spike_start
    ]
    assert before_spike
    marker = markers.nth(before_spike[-1])
    assert datetime.fromisoformat(marker.get_attribute("data-at")).astimezone(UTC) == change_at
    expect(page.locator("table.tl-top")).to_contain_text("updated block-by-risk-score")

    marker.locator("rect.tl-flag").click()
    page.wait_for_url("**/t/acme/audit/*/")
    expect(page.get_by_role("heading", name="flow.action_updated")).to_be_visible()
    config_row = page.locator("table.audit-diff tr", has=page.locator("th", has_text="config"))
    expect(config_row.locator("td").nth(0)).to_contain_text('"threshold": 80')
    expect(config_row.locator("td").nth(1)).to_contain_text('"threshold": 10')
    assert console_errors == []


def test_the_blocked_part_of_a_bar_lists_the_blocked_runs(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    assert seed_demo_history(personas.tenant_a, editor=personas.editor, admin=personas.admin)
    sign_in(page, live_server, "a-viewer")
    page.wait_for_url("**/t/acme/**")
    page.goto(f"{live_server.url}/t/acme/audit/timeline/")

    # The bucket with most blocks, and the blocked part of its bar.
    blocked_parts = page.locator('a.tl-seg-link[data-outcome="block"]')
    counts = [int(blocked_parts.nth(i).get_attribute("data-runs")) for i in range(blocked_parts.count())]
    assert counts
    tallest = blocked_parts.nth(counts.index(max(counts)))
    tallest.click()
    page.wait_for_url("**/t/acme/audit/?*outcome=block*")

    expect(page.get_by_label("Outcome")).to_have_value("block")
    rows = page.locator("#results table.data tbody tr")
    expect(rows.first).to_be_visible()
    # Exactly the runs the blocked part counted (a page holds 50), every one of them blocked.
    assert rows.count() == min(max(counts), 50)
    outcomes = rows.locator("td:nth-child(5) .status").all_inner_texts()
    assert set(outcomes) == {"block"} and len(outcomes) == rows.count()
    assert console_errors == []


def test_the_chart_is_one_tab_stop_walked_with_the_arrow_keys_and_also_a_table(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    assert seed_demo_history(personas.tenant_a, editor=personas.editor, admin=personas.admin)
    sign_in(page, live_server, "a-viewer")
    page.wait_for_url("**/t/acme/**")
    page.goto(f"{live_server.url}/t/acme/audit/timeline/")
    bars = page.locator("svg.timeline-chart a.tl-bar")
    assert bars.count() > 20

    # Tab from the last filter control lands on the chart once, on its earliest bar or marker...
    page.locator("svg.timeline-chart").evaluate("chart => chart.querySelector('a.tl-bar').focus()")
    first = page.evaluate("() => document.activeElement.dataset.start || document.activeElement.dataset.at")
    page.keyboard.press("Home")
    earliest = page.evaluate("() => document.activeElement.dataset.start || document.activeElement.dataset.at")
    assert earliest <= first
    tab_stops = page.evaluate(
        "() => [...document.querySelectorAll('svg.timeline-chart a')].filter(a => a.tabIndex >= 0).length"
    )
    assert tab_stops == 1
    # ...the arrow keys move in time order...
    page.keyboard.press("ArrowRight")
    second = page.evaluate("() => document.activeElement.dataset.start || document.activeElement.dataset.at")
    assert second > earliest
    # ...Tab leaves the chart instead of walking its 300 links...
    page.keyboard.press("Tab")
    assert page.evaluate("() => !document.activeElement.closest('svg.timeline-chart')")
    # ...and Enter on a bar opens its runs.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("End")
    while page.evaluate("() => !document.activeElement.classList.contains('tl-bar')"):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/audit/\?.*type=flow\.action_executed"))

    # The same figures as a table: a bucket's blocked count lists its blocked runs.
    page.go_back()
    page.get_by_text("Show the chart as a table").click()
    table = page.locator("details.tl-as-table table")
    expect(table).to_be_visible()
    blocked = table.locator("td a[aria-label*=' block run']").first
    assert int(blocked.inner_text()) > 0
    blocked.click()
    page.wait_for_url(re.compile(r"/audit/\?.*outcome=block"))
    assert not console_errors
