"""In Debian chromium: the keyboard leaves the code editor, long code scrolls by keyboard, controls
a role may not change look disabled, and axe-core really runs under the pages' CSP."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from actions_app.versioning import VersionDraft, save_action_version
from flows_app.services import BindingSpec
from tests.accessibility import severe_violations
from tests.browser import sign_in
from tests.flow_helpers import SYSTEM, attach, custom_action

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POST_AUTH = "login.post-auth"


def test_the_keyboard_leaves_the_code_editor_with_ctrl_m(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    action = custom_action(personas.tenant_a, "gate", "return { kind: 'continue' };", [POST_AUTH])
    source = (
        "export async function execute(input: ActionInput): Promise<ActionResult> {\n  return { kind: 'continue' };}"
    )
    save_action_version(action, VersionDraft(source, {"type": "object", "properties": {}}, [POST_AUTH]), acting=SYSTEM)
    sign_in(page, live_server, "a-editor")
    page.goto(f"{live_server.url}/t/acme/actions/gate/")
    page.wait_for_selector("#monaco-container[data-ready=true]")
    hint = page.locator("#tab-focus-help")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Ctrl+M")

    in_editor = "document.getElementById('monaco-container').contains(document.activeElement)"
    page.locator("#monaco-container .view-lines").click()
    page.keyboard.press("Tab")  # indents: the editor keeps the focus
    assert page.evaluate(in_editor)
    page.keyboard.press("Control+m")
    page.keyboard.press("Tab")
    assert not page.evaluate(in_editor), "Tab after Ctrl+M should move the focus out of the editor"

    # An editor may save drafts but not publish: the button is there, disabled, and says whom to ask.
    draft_row = page.locator("#history tbody tr", has_text="0.1.1")
    expect(draft_row.get_by_role("button", name="Publish")).to_be_disabled()
    expect(draft_row).to_contain_text("ask an admin")
    assert console_errors == []


def test_long_code_scrolls_by_keyboard_and_short_code_adds_no_tab_stop(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    body = "\n".join(f"  console.log('line {n}');" for n in range(80)) + "\n  return { kind: 'continue' };"
    custom_action(personas.tenant_a, "long", body, [POST_AUTH])
    sign_in(page, live_server, "a-viewer")
    page.goto(f"{live_server.url}/t/acme/actions/long/versions/0.1.0/")
    source, schema = page.locator("pre.code").nth(0), page.locator("pre.code").nth(1)
    expect(source).to_have_attribute("tabindex", "0")
    expect(schema).not_to_have_attribute("tabindex", "0")
    source.focus()
    page.keyboard.press("PageDown")
    page.wait_for_function("() => document.querySelector('pre.code').scrollTop > 0")
    assert console_errors == []


def test_controls_a_viewer_may_not_change_look_disabled(page: Any, live_server: Any, personas: Any) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}))
    look = "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.borderTopStyle, s.cursor]; }"

    sign_in(page, live_server, "a-editor")
    page.goto(f"{live_server.url}/t/acme/flows/login/")
    editable = page.get_by_label("Risk threshold")
    expect(editable).to_be_enabled()
    assert editable.evaluate(look) == ["rgb(255, 255, 255)", "solid", "text"]

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "a-viewer")
    page.goto(f"{live_server.url}/t/acme/flows/login/")
    read_only = page.get_by_label("Risk threshold")
    expect(read_only).to_be_disabled()
    background, border, cursor = read_only.evaluate(look)
    assert background != "rgb(255, 255, 255)" and border == "dashed" and cursor == "not-allowed"


def test_axe_core_runs_under_the_csp_and_finds_what_it_should(page: Any, live_server: Any, personas: Any) -> None:
    """The check every browser test relies on: it loads despite script-src 'self' and sees a
    low-contrast text."""
    sign_in(page, live_server, "a-viewer")
    page.wait_for_url("**/t/acme/actions/")
    assert severe_violations(page) == []
    page.evaluate(
        """() => { const faint = document.createElement("p"); faint.id = "faint"; faint.textContent = "hard to read";
        faint.style.color = "#c8c8c8"; document.querySelector("main").append(faint); }"""
    )
    found = severe_violations(page)
    assert any("color-contrast" in line and "#faint" in line for line in found), found
    page.evaluate("document.getElementById('faint').remove()")  # the fixture checks this page again
