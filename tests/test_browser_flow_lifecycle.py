"""In Debian chromium: duplicating a flow from the flows list, and attaching an action to a flow
from its page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from flows_app.bindings import binding_config
from flows_app.models import Binding
from flows_app.services import BindingSpec
from tests.flow_helpers import attach, flow_of
from tests.test_browser_foundation import sign_in

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
