"""In Debian chromium: attach a template to a slot, fix a config error, save, try the flow and see
the block, upgrade a pinned template to its newer version, reorder by drag and drop, and work
with collapsed binding cards."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from flows_app.models import Binding
from flows_app.services import BindingSpec
from tests.browser import sign_in
from tests.factories import acting_as
from tests.flow_helpers import attach, flow_of

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
    page.get_by_role("button", name="Run this trigger only").click()
    result = page.locator("#try-result")
    expect(result).to_contain_text("Outcome: block")
    expect(result).to_contain_text("Too risky today")
    expect(page.locator("#try-trace")).to_contain_text("block-by-risk-score")

    # The whole sign-in: every slot in order, each with its trace beside it, ending at the block.
    page.get_by_role("button", name="Run the whole sign-in").click()
    expect(result).to_contain_text("Sign-in outcome: block at login.post-auth")
    steps = page.locator("#try-sign-in > li")
    expect(steps).to_have_count(4)
    expect(steps.nth(0)).to_contain_text("login.pre-credential-check")
    expect(steps.nth(0)).to_contain_text("rate-limit-by-ip")
    expect(steps.nth(1)).to_contain_text("block-by-risk-score")
    expect(steps.nth(2)).to_contain_text("not reached")
    head = steps.nth(1).locator(".sign-in-step-head").bounding_box()
    trace = steps.nth(1).locator("table").bounding_box()
    assert head is not None and trace is not None and trace["x"] > head["x"] + head["width"] - 1  # beside it

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
    by_ip.get_by_role("button", name="Expand").click()
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


def test_seven_collapsed_cards_fit_one_screen_and_keep_what_was_typed(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    tenant = personas.tenant_a
    domains = {"domains": ["example.com"], "message": "Not here"}
    hook = {"url": "https://hooks.example.com/in", "secret": "s3cret-signing-key-0001"}
    slack = {"webhook_url": "https://hooks.slack.com/services/T0/B0/x", "text": "{user.email}"}
    attach(
        tenant,
        PRE_CREDENTIAL,
        BindingSpec("domain-allowlist", "1.0.0", domains),
        BindingSpec("domain-blocklist", "1.0.0", {"domains": ["spam.example"]}),
        BindingSpec("rate-limit-by-ip", "1.1.0", {"limit": 5, "window_seconds": 60, "allow_cidrs": ["10.0.0.0/8"]}),
        BindingSpec("rate-limit-by-user", "1.0.0", {"max_attempts": 3, "window_seconds": 300}),
        BindingSpec("webhook-emit", "1.0.0", hook),
        BindingSpec("slack-notify", "1.0.0", slack),
        BindingSpec("rate-limit-by-ip", "1.1.0", {"limit": 50, "window_seconds": 3600}, on_error="continue"),
    )
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/flows/login/")

    # Collapsed, each card is one line, and the whole slot fits one screen.
    slot = page.locator(f'[data-slot="{PRE_CREDENTIAL}"]')
    cards = slot.locator("li.binding")
    expect(cards).to_have_count(7)
    slot.evaluate("element => element.scrollIntoView({block: 'start'})")
    box = slot.bounding_box()
    assert box is not None and box["height"] <= 800, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    for index in range(7):
        expect(cards.nth(index)).to_be_in_viewport()
        card_box = cards.nth(index).bounding_box()
        assert card_box is not None and card_box["height"] < 48, (index, card_box)
    hook_card = cards.nth(4)
    expect(hook_card).to_contain_text("url https://hooks.example.com/in")
    assert "secret" not in (hook_card.locator("[data-binding-summary]").text_content() or "")
    last = cards.nth(6)
    expect(last.locator("[data-binding-summary]")).to_contain_text("on error continue")
    expect(last.get_by_label("Requests allowed per window")).to_be_hidden()

    # Expand one, change it, collapse it again: the line says what was typed, and it is kept.
    last.get_by_role("button", name="Expand").click()
    expect(last.get_by_role("button", name="Collapse")).to_have_attribute("aria-expanded", "true")
    last.get_by_label("Requests allowed per window").fill("75")
    last.get_by_label("Enabled").uncheck()
    last.get_by_role("button", name="Collapse").click()
    expect(last.get_by_label("Requests allowed per window")).to_be_hidden()
    summary = last.locator("[data-binding-summary]")
    expect(summary).to_contain_text("limit 75")
    expect(summary).to_contain_text("disabled")

    # Drag the collapsed last card to the top; the order field follows.
    slot.evaluate("element => element.scrollIntoView({block: 'start'})")
    moved_uid = last.get_attribute("data-uid")
    first_uid = cards.nth(0).get_attribute("data-uid")
    last.locator("[data-drag-handle]").drag_to(cards.nth(0).locator("[data-drag-handle]"))
    expect(cards.nth(0)).to_have_attribute("data-uid", moved_uid or "")
    expect(cards.nth(1)).to_have_attribute("data-uid", first_uid or "")
    expect(cards.nth(0).locator("[data-position]")).to_have_text("#1")

    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_text("Saved revision 3")).to_be_visible()
    rows = sorted((b for b in current_bindings(tenant) if b.trigger == PRE_CREDENTIAL), key=lambda b: b.position)
    assert rows[0].key.hex == moved_uid and rows[1].key.hex == first_uid
    assert (rows[0].config["limit"], rows[0].enabled) == (75, False)
    assert rows[5].action.slug == "webhook-emit" and rows[5].encrypted_secrets  # the secret is kept
    assert console_errors == []


def test_a_stale_save_offers_a_merge_then_shows_what_an_overwrite_replaces(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    from flows_app.services import save_flow_slots
    from tests.flow_helpers import flow_of

    tenant = personas.tenant_a
    limit = {"limit": 7, "window_seconds": 30}
    attach(
        tenant,
        PRE_CREDENTIAL,
        BindingSpec("rate-limit-by-ip", "1.0.0", limit),
        BindingSpec("rate-limit-by-user", "1.0.0", {"max_attempts": 3, "window_seconds": 300}),
    )
    keys = {b.action.slug: b.key for b in current_bindings(tenant)}

    def admin_saves(ip_limit: int, attempts: int) -> None:
        flow = flow_of(tenant)
        specs = [
            BindingSpec("rate-limit-by-ip", "1.0.0", {**limit, "limit": ip_limit}, key=keys["rate-limit-by-ip"]),
            BindingSpec(
                "rate-limit-by-user",
                "1.0.0",
                {"max_attempts": attempts, "window_seconds": 300},
                key=keys["rate-limit-by-user"],
            ),
        ]
        number = flow.current_revision.number  # type: ignore[union-attr]
        save_flow_slots(flow, {PRE_CREDENTIAL: specs}, expected_revision=number, acting=acting_as(personas.admin))

    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/flows/login/")
    by_user = page.locator("li.binding", has_text="Rate limit by user")
    by_user.get_by_role("button", name="Expand").click()
    by_user.get_by_label("Attempts allowed per window").fill("9")
    admin_saves(ip_limit=3, attempts=3)  # r3: someone else changes the other binding

    page.get_by_role("button", name="Save flow").click()
    box = page.locator("#stale-box")
    expect(box).to_be_focused()
    expect(box).to_contain_text("touch different bindings")
    page.get_by_role("button", name="Merge with r3").click()
    merged = page.get_by_text("Merged your changes with r3.")
    expect(merged).to_be_focused()
    expect(merged).to_be_in_viewport()
    by_ip = page.locator("li.binding", has_text="Rate limit by IP")
    expect(by_ip.locator("[data-binding-summary]")).to_contain_text("limit 3")
    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_text("Saved revision 4")).to_be_visible()
    saved = {b.action.slug: b.config for b in current_bindings(tenant)}
    assert saved["rate-limit-by-ip"]["limit"] == 3 and saved["rate-limit-by-user"]["max_attempts"] == 9

    # Now both change the same binding: the box shows what would be overwritten, field by field.
    by_user = page.locator("li.binding", has_text="Rate limit by user")
    by_user.get_by_role("button", name="Expand").click()
    by_user.get_by_label("Attempts allowed per window").fill("11")
    admin_saves(ip_limit=3, attempts=4)  # r5
    page.get_by_role("button", name="Save flow").click()
    row = page.locator("#stale-box table tr", has_text="config.max_attempts")
    expect(row).to_contain_text("9")
    expect(row.locator("td.diff-del")).to_have_text("4")
    expect(row.locator("td.diff-add")).to_have_text("11")
    expect(page.get_by_role("button", name="Merge with r5")).to_have_count(0)
    page.get_by_role("button", name="Overwrite with my version…").click()
    expect(page.get_by_text("replaces the one saved in r5")).to_be_visible()
    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_text("Saved revision 6")).to_be_visible()
    assert {b.action.slug: b.config for b in current_bindings(tenant)}["rate-limit-by-user"]["max_attempts"] == 11
    # The refused saves answer 409 only without htmx; with it nothing is logged as an error.
    assert console_errors == []
