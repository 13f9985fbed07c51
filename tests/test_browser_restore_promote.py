"""In Debian chromium: restore an earlier revision from the revisions page, and promote a staging
flow into the live one, each after a preview of the difference (contract §14)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from flows_app.models import Binding
from flows_app.services import BindingSpec, create_flow
from tests.browser import sign_in
from tests.flow_helpers import SYSTEM, attach, flow_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POST_AUTH = "login.post-auth"


def risk_block(threshold: int) -> BindingSpec:
    return BindingSpec("block-by-risk-score", "1.0.0", {"threshold": threshold, "message": "risky"})


def thresholds(tenant: Any, slug: str = "login") -> list[int]:
    revision = flow_of(tenant, slug).current_revision
    return [b.config["threshold"] for b in Binding.objects.filter(revision=revision, trigger=POST_AUTH)]


def test_operator_restores_a_revision_and_promotes_staging(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    tenant = personas.tenant_a
    attach(tenant, POST_AUTH, risk_block(50))
    attach(tenant, POST_AUTH, risk_block(90))
    create_flow(tenant, name="Login staging", slug="login-staging", kind="login", acting=SYSTEM)
    attach(tenant, POST_AUTH, risk_block(65), flow_slug="login-staging")
    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")

    # Roll back: from the revisions page, preview r2 against the running r3, then restore it.
    page.goto(f"{live_server.url}/t/acme/flows/login/revisions/")
    page.get_by_role("link", name="Restore r2…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Restore revision 2 of Login?")
    change = page.locator("table.field-changes tr", has_text="config.threshold")
    expect(change).to_contain_text("90")
    expect(change).to_contain_text("→ 50")
    page.get_by_role("button", name="Restore r2 as r4").click()
    expect(page.get_by_text("Restored revision 2 as revision 4 of login.")).to_be_visible()
    expect(page.locator("tr", has_text="Restored revision 2").first).to_contain_text("current")
    assert thresholds(tenant) == [50]

    # Promote: from the staging flow's editor, choose the live flow, see the difference, confirm.
    page.goto(f"{live_server.url}/t/acme/flows/login-staging/")
    page.get_by_role("link", name="Promote into…").click()
    page.get_by_role("link", name="Preview promoting into login").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Promote Login staging into Login?")
    expect(page.locator("table.field-changes tr", has_text="config.threshold")).to_contain_text("→ 65")
    # Someone saves the live flow meanwhile: confirming shows the new difference instead.
    attach(tenant, POST_AUTH, risk_block(30))
    page.get_by_role("button", name="Promote into login as r5").click()
    expect(page.locator("#replace-notice")).to_contain_text("was saved since this preview was made (now r5")
    expect(page.locator("table.field-changes tr", has_text="config.threshold")).to_contain_text("30")
    assert thresholds(tenant) == [30]
    page.get_by_role("button", name="Promote into login as r6").click()
    expect(page.get_by_text("Promoted from login-staging r2 as revision 6 of login.")).to_be_visible()
    assert thresholds(tenant) == [65]
    assert thresholds(tenant, "login-staging") == [65]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    # The refused confirm answers 409 (the page says why), which chromium logs; nothing else may.
    assert [e for e in console_errors if "status of 409" not in e] == []
