"""In Debian chromium: duplicating a flow from the flows list, and attaching an action to a flow
from its page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from flows_app.bindings import binding_config
from flows_app.models import Binding
from flows_app.services import BindingSpec
from tests.browser import sign_in
from tests.flow_helpers import attach, flow_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POST_AUTH = "login.post-auth"
HOOK = {"url": "https://hooks.example.com/in", "secret": "signing-secret-0123456789"}


def test_operator_duplicates_a_flow_from_the_list(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    tenant = personas.tenant_a
    attach(
        tenant,
        POST_AUTH,
        BindingSpec("webhook-emit", "1.0.0", HOOK),
        BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70, "message": "risky"}),
    )
    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/flows/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    login_row = page.locator("tbody tr", has=page.locator('a[href="/t/acme/flows/login/"]'))
    login_row.get_by_role("link", name="Duplicate…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Duplicate Login")
    expect(page.get_by_label("Name")).to_have_value("Login (copy)")
    expect(page.get_by_label("Slug")).to_have_value("login-copy")

    # A slug in use: said next to the field and in the summary; what was typed stays.
    page.get_by_label("Name").fill("Login (staging)")
    page.get_by_label("Slug").fill("registration")
    page.get_by_role("button", name="Create the copy").click()
    expect(page.locator(".form-errors")).to_contain_text("Slug: A flow with the slug “registration” already exists")
    expect(page.locator("#field-slug .errorlist")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Login (staging)")

    page.get_by_label("Slug").fill("login-staging")
    page.get_by_role("button", name="Create the copy").click()
    page.wait_for_url("**/t/acme/flows/login-staging/")
    expect(page.get_by_text("Duplicated from login r2 as Login (staging) with 2 actions.")).to_be_visible()
    expect(page.locator("#flow-revision-meta")).to_contain_text("r1")
    copy = Binding.objects.filter(revision=flow_of(tenant, "login-staging").current_revision)
    assert [binding_config(b) for b in copy] == [HOOK, {"threshold": 70, "message": "risky"}]
    assert console_errors == []


def test_operator_attaches_a_template_to_a_flow_from_its_page(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    tenant = personas.tenant_a
    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/actions/rate-limit-by-ip/")
    page.get_by_role("link", name="Attach to a flow…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Attach Rate limit by IP to a flow")
    target = page.get_by_label("Flow and slot")
    # Only compatible slots: post-auth is not one of rate-limit-by-ip's triggers.
    expect(target.locator("option", has_text="login.post-auth")).to_have_count(0)
    target.select_option(label="Login (login) · login.pre-credential-check")
    page.get_by_label("Requests allowed per window").fill("0")
    page.get_by_label("Window (seconds)").fill("60")
    page.get_by_role("button", name="Attach").click()
    expect(page.get_by_text("Nothing was attached. Fix the configuration marked below.")).to_be_visible()
    expect(page.locator("#field-config-limit .errorlist")).to_be_visible()
    expect(page.get_by_label("Window (seconds)")).to_have_value("60")
    expect(page.get_by_label("Flow and slot")).to_have_value("login:login.pre-credential-check")

    # Someone saves the flow while the operator fixes the limit: said, nothing lost.
    attach(tenant, "login.pre-credential-check", BindingSpec("webhook-emit", "1.0.0", HOOK))
    page.get_by_label("Requests allowed per window").fill("20")
    page.get_by_role("button", name="Attach").click()
    expect(page.locator("#attach-notice")).to_contain_text("Login was saved since you opened this page (now r2")
    expect(page.get_by_label("Requests allowed per window")).to_have_value("20")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.set_viewport_size({"width": 420, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 420

    page.get_by_role("button", name="Attach").click()
    page.wait_for_url("**/t/acme/flows/login/")
    expect(
        page.get_by_text("Attached Rate limit by IP 1.1.0 to login.pre-credential-check of Login as revision 3.")
    ).to_be_visible()
    slot = Binding.objects.filter(revision=flow_of(tenant).current_revision).order_by("position")
    assert [(b.action.slug, b.config.get("limit")) for b in slot] == [("webhook-emit", None), ("rate-limit-by-ip", 20)]
    # The refused attach answers 409 (the page says why), which chromium logs; nothing else may.
    assert [e for e in console_errors if "status of 409" not in e] == []
