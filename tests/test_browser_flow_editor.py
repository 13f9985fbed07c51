"""In Debian chromium: attach a template to a slot, fix a config error, save, try the flow and see
the block, upgrade a pinned template to its newer version, and reorder by drag and drop."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from flows_app.models import Binding
from flows_app.services import BindingSpec
from tests.flow_helpers import attach, flow_of
from tests.test_browser_foundation import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRE_CREDENTIAL = "login.pre-credential-check"
POST_AUTH = "login.post-auth"


def current_bindings(tenant: Any) -> list[Binding]:
    revision = flow_of(tenant).current_revision
    return list(Binding.objects.filter(revision=revision).select_related("action", "pinned_version"))


def test_operator_attaches_saves_tries_and_upgrades(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    tenant = personas.tenant_a
    attach(tenant, PRE_CREDENTIAL, BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 5, "window_seconds": 60}))
    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/flows/login/")
    page.evaluate("window.__sameDocument = true")

    # Attach a template: htmx swaps the editor in place, with the schema's defaults.
    page.get_by_label(f"Add an action to {POST_AUTH}").select_option("block-by-risk-score")
    page.get_by_role("button", name=f"Add to {POST_AUTH}").click()
    risk = page.locator("li.binding", has_text="Block by risk score")
    expect(risk).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True
    expect(risk.get_by_role("button", name="Show")).to_be_hidden()  # htmx swaps on change instead
    threshold = risk.get_by_label("Risk threshold")
    expect(threshold).to_have_value("70")

    # An invalid threshold: the error appears next to the field and what was typed stays.
    threshold.fill("150")
    risk.get_by_label("Message shown to the user").fill("Too risky today")
    page.get_by_role("button", name="Save flow").click()
    field = risk.locator(".field", has=page.get_by_label("Risk threshold"))
    expect(field.locator(".errorlist")).to_contain_text("between 0 and 100")
    # Save is at the bottom; the summary of what went wrong is brought into view and focused.
    expect(page.locator("#editor-errors")).to_be_focused()
    expect(page.locator("#editor-errors")).to_be_in_viewport()
    expect(risk.get_by_label("Risk threshold")).to_have_value("150")
    expect(risk.get_by_label("Message shown to the user")).to_have_value("Too risky today")
    assert flow_of(tenant).current_revision.number == 2  # type: ignore[union-attr]

    risk.get_by_label("Risk threshold").fill("80")
    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_text("Saved revision 3")).to_be_visible()
    saved = next(b for b in current_bindings(tenant) if b.trigger == POST_AUTH)
    assert saved.config == {"threshold": 80, "message": "Too risky today"}

    # Try it: a risky attempt is blocked, with the trace of the action that blocked it.
    page.get_by_label("Risk score").fill("95")
    page.get_by_role("button", name="Run").click()
    result = page.locator("#try-result")
    expect(result).to_contain_text("Outcome: block")
    expect(result).to_contain_text("Too risky today")
    expect(page.locator("#try-trace")).to_contain_text("block-by-risk-score")

    # The pinned rate limit has a newer version: upgrade it, fill the new setting, save.
    limiter = page.locator("li.binding", has_text="Rate limit by IP")
    expect(limiter).to_contain_text("Newer version available: 1.1.0")
    limiter.get_by_role("button", name="Upgrade").click()
    limiter = page.locator("li.binding", has_text="Rate limit by IP")
    expect(limiter).to_contain_text("Upgraded from 1.0.0 to 1.1.0")
    expect(limiter.get_by_label("Requests allowed per window")).to_have_value("5")
    limiter.get_by_label("Never limit these networks").fill("10.0.0.0/8")
    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_text("Saved revision 4")).to_be_visible()
    upgraded = next(b for b in current_bindings(tenant) if b.trigger == PRE_CREDENTIAL)
    assert upgraded.pinned_version.version == "1.1.0"
    assert upgraded.config["allow_cidrs"] == ["10.0.0.0/8"] and upgraded.config["limit"] == 5
    assert console_errors == []


def test_operator_changes_a_version_and_reorders_by_drag_and_drop(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    tenant = personas.tenant_a
    attach(
        tenant,
        PRE_CREDENTIAL,
        BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 5, "window_seconds": 60}),
        BindingSpec("rate-limit-by-user", "1.0.0", {"max_attempts": 3, "window_seconds": 300}),
    )
    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/flows/login/")

    # With JavaScript the version select swaps the config form by itself; the "Show" button is hidden.
    by_ip = page.locator("li.binding", has_text="Rate limit by IP")
    expect(by_ip.get_by_role("button", name="Show")).to_be_hidden()
    by_ip.get_by_label("Version").select_option("1.1.0")
    expect(by_ip.get_by_label("Never limit these networks")).to_be_visible()
    expect(by_ip.get_by_label("Requests allowed per window")).to_have_value("5")

    # Drag "Rate limit by user" above "Rate limit by IP": only the slot's order field changes.
    slot = page.locator(f'[data-slot="{PRE_CREDENTIAL}"]')
    by_ip.evaluate("element => element.scrollIntoView({block: 'start'})")
    by_user = slot.locator("li.binding", has_text="Rate limit by user")
    by_user.locator("[data-drag-handle]").drag_to(by_ip.locator("[data-drag-handle]"))
    expect(slot.locator('input[name="order-login.pre-credential-check"]')).to_have_value(
        ",".join(uid for uid in [by_user.get_attribute("data-uid"), by_ip.get_attribute("data-uid")] if uid)
    )
    expect(slot.locator("li.binding").first).to_contain_text("Rate limit by user")
    expect(slot.locator("li.binding").first.get_by_role("button", name="Move up")).to_be_disabled()

    # Enter in a text box saves (the form's first submit button is "Save flow", not a Remove).
    by_ip.get_by_label("Requests allowed per window").press("Enter")
    expect(page.get_by_text("Saved revision 3")).to_be_visible()
    rows = sorted(current_bindings(tenant), key=lambda b: b.position)
    assert [(b.action.slug, b.pinned_version.version) for b in rows] == [
        ("rate-limit-by-user", "1.0.0"),
        ("rate-limit-by-ip", "1.1.0"),
    ]
    assert console_errors == []
