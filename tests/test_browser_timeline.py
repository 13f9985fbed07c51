"""In Debian chromium: find yesterday's burst of blocked sign-ins on the timeline, see the change
just before it, and open that change's diff (the demo incident, contract §10)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from flows_app.demo_history import incident_window, seed_demo_history
from tests.test_browser_foundation import sign_in

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
