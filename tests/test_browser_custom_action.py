"""In Debian chromium: create an action from a starter, watch a type error appear in Monaco, fix it,
save, run the test harness, publish, and see the version in the history."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from actions_app.models import Action
from tests.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def monaco_errors(page: Any) -> list[str]:
    return page.evaluate(
        "monaco.editor.getModelMarkers({}).filter(m => m.severity === monaco.MarkerSeverity.Error).map(m => m.message)"
    )


def test_operator_writes_tests_and_publishes_a_custom_action(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    sign_in(page, live_server, "a-admin")
    page.goto(f"{live_server.url}/t/acme/actions/")
    page.get_by_role("link", name="New action").click()
    page.get_by_role("link", name="Start from block by risk score").click()
    page.wait_for_selector("#monaco-container[data-ready=true]")
    assert page.get_by_label("Slug").input_value() == "block-by-risk-score"
    page.get_by_label("Name").fill("Risk gate")
    expect(page.get_by_label("Slug")).to_have_value("risk-gate")

    # A typo in the result kind: Monaco marks it as a type error without a round trip.
    page.evaluate(
        "window.actionEditor.getModel().setValue(window.actionEditor.getModel().getValue()"
        ".replace('kind: \"block\"', 'kind: \"blok\"'))"
    )
    page.wait_for_function("() => monaco.editor.getModelMarkers({}).some(m => m.severity === 8)")
    assert any("blok" in message for message in monaco_errors(page))

    # Saving now is refused by the server with the same error, and nothing typed is lost.
    page.keyboard.press("Control+s")
    page.wait_for_selector("#editor-errors")
    assert "TS2820" in page.locator("#diagnostics").inner_text()
    page.wait_for_selector("#monaco-container[data-ready=true]")
    assert "blok" in page.evaluate("window.actionEditor.getValue()")
    assert page.get_by_label("Name").input_value() == "Risk gate"
    assert not Action.objects.filter(slug="risk-gate").exists()

    page.evaluate(
        "window.actionEditor.getModel().setValue(window.actionEditor.getModel().getValue()"
        ".replace('kind: \"blok\"', 'kind: \"block\"'))"
    )
    page.wait_for_function("() => !monaco.editor.getModelMarkers({}).some(m => m.severity === 8)")
    page.get_by_role("button", name="Save action").click()
    page.wait_for_url("**/t/acme/actions/risk-gate/")
    expect(page.get_by_text("Saved risk-gate 0.1.0 as a draft.")).to_be_visible()

    # Test harness: a high risk score blocks.
    page.wait_for_selector("#monaco-container[data-ready=true]")
    harness_input = page.get_by_label("Input (JSON)")
    harness_input.fill(harness_input.input_value().replace('"score": 20', '"score": 97'))
    page.get_by_role("button", name="Run").click()
    result = page.locator("#harness-result")
    expect(result).to_contain_text("block")
    expect(result).to_contain_text("Risk score 97 is above 85")

    # Publish 0.1.0 and see it in the history.
    history = page.locator("#history")
    history.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published risk-gate 0.1.0")).to_be_visible()
    row = page.locator("#history tbody tr").first
    expect(row).to_contain_text("0.1.0")
    expect(row).to_contain_text("published")
    assert Action.objects.get(slug="risk-gate").versions.get().status == "published"
    # The refused save answered 422 on purpose; anything else logged would be a real problem.
    assert [e for e in console_errors if "status of 422" not in e] == []


def test_the_conflict_box_and_the_harness_fit_the_screen(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    """The concurrent-save box at 1280 px and the test harness at 420 px stay within the page."""
    from actions_app.versioning import VersionDraft, create_custom_action, save_action_version
    from tests.flow_helpers import SYSTEM

    long_line = "  // " + "a long comment that runs on well past the width of half the screen " * 3
    source = (
        "export async function execute(input: ActionInput): Promise<ActionResult> {\n"
        '  console.log("x".repeat(300));\n'
        '  return { kind: "continue", claims: { "https://example.com/long": "y".repeat(300) } };\n}\n'
    )
    schema = {"type": "object", "properties": {"note": {"type": "string", "title": "A setting with a long name"}}}
    create_custom_action(
        personas.tenant_a,
        name="Wide",
        slug="wide",
        draft=VersionDraft(source + long_line + "\n", schema, ["login.post-auth"]),
        acting=SYSTEM,
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server, "a-admin")
    page.goto(f"{live_server.url}/t/acme/actions/wide/")
    page.wait_for_selector("#monaco-container[data-ready=true]")
    # Someone else saves 0.1.1 meanwhile; this editor still says it edits 0.1.0.
    latest = personas.tenant_a.actions.get(slug="wide").versions.get()
    save_action_version(
        latest.action,
        VersionDraft(source + long_line + " (theirs)\n", schema, ["login.post-auth"]),
        base_version="0.1.0",
        acting=SYSTEM,
    )
    page.evaluate("window.actionEditor.getModel().setValue(window.actionEditor.getModel().getValue() + '// mine\\n')")
    page.get_by_role("button", name="Save new version").click()
    page.wait_for_selector(".conflict-texts")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"{live_server.url}/t/acme/actions/wide/")
    page.wait_for_selector("#monaco-container[data-ready=true]")
    page.get_by_role("button", name="Run").click()
    page.locator("#harness-result").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    harness = page.locator("#harness")
    assert harness.evaluate("el => el.scrollWidth <= el.clientWidth"), "the harness overflows its card"
