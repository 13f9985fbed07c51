"""In Debian chromium: create an API token, copy it, see it once (a reload no longer shows it),
revoke it; invite a member by email after a typo, copy the link, sign up through it in another
browser, and change the new member's role."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tenants.models import ApiToken, Membership
from tenants.services import authenticate_token
from tests.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_creates_a_token_sees_it_once_and_revokes_it(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server, "a-admin")
    page.wait_for_url("**/t/acme/actions/")
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url("**/t/acme/settings/")
    expect(page.get_by_text("No API tokens yet.")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    # Forgetting the scopes: the error is next to them and the name stays.
    form = page.locator("#token-form")
    form.get_by_label("Name").fill("CI deploy")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#field-scopes .errorlist")).to_have_text("Choose at least one scope.")
    expect(form.get_by_label("Name")).to_have_value("CI deploy")

    page.get_by_label("actions:read — list actions").check()
    page.get_by_label("flows:write — change the actions").check()
    page.get_by_label("Expires").select_option("30")
    page.get_by_role("button", name="Create token").click()
    secret_field = page.get_by_label("Your new token")
    expect(secret_field).to_have_value(re.compile(r"^acx_[0-9a-f]{12}_\S{40,}$"))
    secret = secret_field.input_value()
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped the region only
    token = ApiToken.objects.get(name="CI deploy")
    assert authenticate_token(secret) == token and token.scopes == ["actions:read", "flows:write"]

    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#new-token [data-copy-status]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # Shown once: a reload shows the token's row but never its secret again.
    page.reload()
    expect(page.get_by_label("Your new token")).to_have_count(0)
    row = page.locator(f'tr[data-token="{token.key_id}"]')
    expect(row).to_contain_text("✓ Active")
    assert secret.split("_", 2)[2] not in page.content()

    row.get_by_role("link", name="Revoke…").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Revoke CI deploy")
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text(f"Revoked CI deploy ({token.key_id})")).to_be_visible()
    expect(page.locator(f'tr[data-token="{token.key_id}"]')).to_contain_text("⊘ Revoked")
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    assert authenticate_token(secret) is None
    assert console_errors == []


def test_owner_invites_by_email_the_invitee_signs_up_and_the_owner_changes_their_role(
    page: Any, browser: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server, "a-owner")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/settings/")
    expect(page.get_by_text("No pending invitations.")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    # A typo in the address: the error names the field; the role chosen stays chosen.
    form = page.locator("#invite-member-form")
    form.get_by_label("Email").fill("newbie@example")
    form.get_by_label("Role").select_option("editor")
    form.get_by_role("button", name="Invite").click()
    expect(page.locator("#field-email .errorlist")).to_contain_text("Enter a valid email address.")
    expect(form.get_by_label("Email")).to_have_value("newbie@example")
    expect(form.get_by_label("Role")).to_have_value("editor")

    page.locator("#invite-member-form").get_by_label("Email").fill("newbie@example.com")
    page.locator("#invite-member-form").get_by_role("button", name="Invite").click()
    link_field = page.get_by_label("Invitation link")
    expect(link_field).to_have_value(re.compile(rf"^{re.escape(live_server.url)}/invitations/[\w-]{{43}}/$"))
    link = link_field.input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#new-invitation [data-copy-status]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    expect(page.locator("#invitation-list li")).to_contain_text("Invited newbie@example.com · editor · expires")
    assert page.evaluate("window.__sameDocument") is True

    # The invitee, signed out in a browser of their own, signs up through the link.
    invitee = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    try:
        invitee.goto(link)
        expect(invitee.get_by_role("heading", name="Join Acme")).to_be_visible()
        invitee.get_by_role("link", name="Create an account").click()
        expect(invitee.get_by_label("Email")).to_have_value("newbie@example.com")
        invitee.get_by_label("Username").fill("newbie")
        invitee.get_by_label("Password (required)", exact=True).fill("newbie123")
        invitee.get_by_label("Password again").fill("newbie123")
        invitee.get_by_role("button", name="Create account and join").click()
        expect(invitee.locator("#field-password2 .errorlist")).to_contain_text("too similar to the username")
        expect(invitee.get_by_label("Username")).to_have_value("newbie")
        invitee.get_by_label("Password (required)", exact=True).fill("quiet-harbour-47")
        invitee.get_by_label("Password again").fill("quiet-harbour-47")
        invitee.get_by_role("button", name="Create account and join").click()
        invitee.wait_for_url("**/t/acme/actions/")
        expect(invitee.get_by_text("You joined Acme as editor.")).to_be_visible()
    finally:
        invitee.context.close()

    page.reload()
    expect(page.get_by_label("Invitation link")).to_have_count(0)
    expect(page.get_by_text("No pending invitations.")).to_be_visible()
    row = page.locator('tr[data-member="newbie"]')
    expect(row.get_by_label("Role of newbie")).to_have_value("editor")
    row.get_by_label("Role of newbie").select_option("admin")
    row.get_by_role("button", name="Change role").click()
    expect(page.get_by_text("newbie is now admin (was editor).")).to_be_visible()
    newbie = get_user_model().objects.get(username="newbie")
    assert newbie.email == "newbie@example.com"
    assert Membership.objects.get(tenant=personas.tenant_a, user=newbie).role == "admin"
    assert console_errors == []
