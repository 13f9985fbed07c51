"""In Debian chromium: sign in, search the Actions list live, submit a template config form with
an error and then a valid value."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_searches_and_checks_a_template_config(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    sign_in(page, live_server, "a-editor")
    page.wait_for_url(f"{live_server.url}/t/acme/actions/")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(10)

    # Live search: typing narrows the table without a page load, and the URL keeps the state.
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Search").fill("rate-limit")
    expect(rows).to_have_count(2)
    assert page.evaluate("window.__sameDocument") is True
    assert "q=rate-limit" in page.url
    page.reload()
    expect(rows).to_have_count(2)

    page.get_by_role("link", name="Rate limit by IP", exact=True).click()
    page.wait_for_url("**/t/acme/actions/rate-limit-by-ip/")
    limit = page.get_by_label("Requests allowed per window")
    limit.fill("0")
    page.get_by_label("Window (seconds)").fill("90000")
    page.get_by_role("button", name="Check configuration").click()

    limit_field = page.locator("#field-config-limit")
    limit_field.locator(".errorlist").wait_for()
    assert page.locator(".form-errors").first.is_visible()
    window_field = page.locator("#field-config-window_seconds")
    assert "86400" in window_field.locator(".errorlist").inner_text()
    # The refused number fields are outlined in the error colour, as refused text areas are.
    bad = page.evaluate(
        """() => { const probe = document.createElement("span"); probe.style.color = "var(--bad)";
        document.body.append(probe); const colour = getComputedStyle(probe).color; probe.remove(); return colour; }"""
    )
    for label in ("Requests allowed per window", "Window (seconds)"):
        assert page.get_by_label(label).evaluate("el => getComputedStyle(el).borderTopColor") == bad
    # what was typed is still there
    assert page.get_by_label("Requests allowed per window").input_value() == "0"
    assert page.get_by_label("Window (seconds)").input_value() == "90000"

    page.get_by_label("Requests allowed per window").fill("20")
    page.get_by_label("Window (seconds)").fill("60")
    page.get_by_role("button", name="Check configuration").click()
    page.get_by_text("This configuration is valid").wait_for()
    assert page.locator("#field-config-limit .errorlist").count() == 0
    assert console_errors == []


def test_on_a_phone_no_page_is_wider_than_the_screen(page: Any, live_server: Any, personas: Any) -> None:
    """At 420 px an on-call operator can reach everything: wide tables scroll inside themselves,
    the header and the flow editor's binding cards wrap, and Sign out stays on screen."""
    from flows_app.services import BindingSpec
    from tests.flow_helpers import attach, run

    attach(
        personas.tenant_a,
        "login.pre-credential-check",
        BindingSpec("rate-limit-by-ip", "1.1.0", {"limit": 5, "window_seconds": 60}),
    )
    run(personas.tenant_a, "login.pre-credential-check")
    page.set_viewport_size({"width": 420, "height": 900})
    sign_in(page, live_server, "a-owner")
    page.wait_for_url(f"{live_server.url}/t/acme/actions/")
    for path in (
        "/t/acme/actions/",
        "/t/acme/actions/rate-limit-by-ip/",
        "/t/acme/flows/",
        "/t/acme/flows/login/",
        "/t/acme/flows/login/runs/",
        "/t/acme/audit/",
        "/t/acme/settings/",
    ):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 420, path
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
