"""In Debian chromium: open a template's recorded execution, replay it with the recorded config
and then with another one, and switch the version to see its own settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from flows_app.models import ActionExecution
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.browser import sign_in
from tests.flow_helpers import attach, run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POST_AUTH = "login.post-auth"
PRE_AUTH = "login.pre-credential-check"


def test_operator_replays_a_template_execution_with_another_config(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}))
    transaction_id = run(personas.tenant_a, POST_AUTH, risk=30, email="replay@example.com").transaction_id
    settle_tenant(personas.tenant_a)
    recorded = ActionExecution.objects.get(transaction_id=transaction_id)

    sign_in(page, live_server, "a-editor")
    page.goto(f"{live_server.url}/t/acme/actions/block-by-risk-score/runs/{recorded.pk}/")
    page.get_by_role("link", name="Replay this execution").click()
    page.wait_for_url(f"**/runs/{recorded.pk}/replay/")

    # It starts from what ran: the recorded version, config and input.
    expect(page.get_by_label("Version")).to_have_value("1.0.0")
    threshold = page.locator('input[name="replay-config-threshold"]')
    expect(threshold).to_have_value("80")
    expect(page.get_by_label("Input (JSON)")).to_have_value(re.compile(r'"email": "replay@example\.com"'))

    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#replay-differences")).to_contain_text("Same outcome")

    # Another config: the recorded sign-in (risk 30) would have been blocked at threshold 10.
    page.locator('input[name="replay-config-threshold"]').fill("10")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#replay-new [data-outcome]")).to_have_text("block")
    expect(page.locator("#replay-recorded [data-outcome]")).to_have_text("continue")
    expect(page.locator("#replay-differences")).to_contain_text("Outcome changed: continue → block")
    expect(page.locator('input[name="replay-config-threshold"]')).to_have_value("10")  # kept

    # A bad value is named next to its field, and nothing runs.
    page.locator('input[name="replay-config-threshold"]').fill("ten")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#replay-errors")).to_contain_text("Config")
    expect(page.locator('input[name="replay-config-threshold"]')).to_have_value("ten")
    # The refused run answers 400, which chromium logs; nothing else may be logged.
    assert [e for e in console_errors if "status of 400" not in e] == []


def test_choosing_another_version_shows_its_settings(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    config = {"limit": 5, "window_seconds": 60, "message": "slow down"}
    attach(personas.tenant_a, PRE_AUTH, BindingSpec("rate-limit-by-ip", "1.0.0", config))
    transaction_id = run(personas.tenant_a, PRE_AUTH).transaction_id
    settle_tenant(personas.tenant_a)
    recorded = ActionExecution.objects.get(transaction_id=transaction_id)

    sign_in(page, live_server, "a-editor")
    page.goto(f"{live_server.url}/t/acme/actions/rate-limit-by-ip/runs/{recorded.pk}/replay/")
    expect(page.locator('[name^="replay-config-allow_cidrs"]')).to_have_count(0)
    page.get_by_label("Version").select_option("1.1.0")
    expect(page.locator("#replay-config-title")).to_contain_text("1.1.0")
    expect(page.locator('[name^="replay-config-allow_cidrs"]').first).to_be_attached()
    expect(page.locator('input[name="replay-config-limit"]')).to_have_value("5")  # the recorded config stays
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#replay-new")).to_contain_text("This run: version 1.1.0")
    expect(page.locator("#replay-differences")).to_contain_text("Same outcome")
    assert console_errors == []
