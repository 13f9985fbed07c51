"""In Debian chromium: open a recorded execution, replay it in the test harness against another
version, and read the recorded and the new result side by side (stacked on a narrow screen)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from actions_app.versioning import VersionDraft, save_action_version
from flows_app.models import ActionExecution
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.browser import sign_in
from tests.flow_helpers import SYSTEM, attach, custom_action, run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POST_AUTH = "login.post-auth"
BLOCKING = """export async function execute(input: ActionInput): Promise<ActionResult> {
  console.log("checking", input.user.email);
  return { kind: "block", reason: "replayed and refused" };
}
"""


def test_operator_replays_an_execution_against_another_version(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    gate = custom_action(personas.tenant_a, "risk-gate", "return { kind: 'continue' };", [POST_AUTH])
    attach(personas.tenant_a, POST_AUTH, BindingSpec("risk-gate", "0.1.0"))
    transaction_id = run(personas.tenant_a, POST_AUTH, email="replay@example.com").transaction_id
    settle_tenant(personas.tenant_a)
    recorded = ActionExecution.objects.get(transaction_id=transaction_id)
    save_action_version(gate, VersionDraft(BLOCKING, {"type": "object", "properties": {}}, [POST_AUTH]), acting=SYSTEM)

    sign_in(page, live_server, "a-editor")
    page.goto(f"{live_server.url}/t/acme/actions/risk-gate/runs/{recorded.pk}/")
    page.get_by_role("link", name="Replay in the test harness").click()
    expect(page.get_by_label("Input (JSON)")).to_have_value(re.compile(r'"email": "replay@example\.com"'))
    recorded_column, new_column = page.locator("#replay-recorded"), page.locator("#replay-new")
    expect(recorded_column).to_contain_text("Recorded: version 0.1.0")
    expect(new_column).to_contain_text("Press Run")

    page.locator("#harness-target").select_option("0.1.1")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(new_column).to_contain_text("This run: version 0.1.1")
    expect(new_column.locator("[data-outcome]")).to_have_text("block")
    expect(recorded_column.locator("[data-outcome]")).to_have_text("continue")
    expect(page.locator("#replay-differences")).to_contain_text("Outcome changed: continue → block")
    expect(new_column).to_contain_text("checking replay@example.com")
    expect(new_column.locator(".changed-flag").first).to_be_visible()

    # Side by side at 1280 px: same top, recorded on the left.
    left, right = recorded_column.bounding_box(), new_column.bounding_box()
    assert left is not None and right is not None
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 2
    # On a narrow screen the columns stack, the recorded one first.
    page.set_viewport_size({"width": 700, "height": 900})
    expect(new_column).to_be_visible()
    left, right = recorded_column.bounding_box(), new_column.bounding_box()
    assert left is not None and right is not None
    assert right["y"] >= left["y"] + left["height"]
    assert console_errors == []
