"""In Debian chromium: on a custom action's page an editor adds a secret (after a refused name),
sees it listed without its value, replaces it, and deletes it after confirming; the panel is
swapped in place each time."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from actions_app.secrets import secrets_for_execution
from tests.browser import sign_in
from tests.factories import add_custom_action

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VALUE = "sk_live_0123456789abcdef"
# Whether the editor's TypeScript declarations (the SDK .d.ts it loaded) name a secret.
SDK_KNOWS = """() => {
  const ts = window.monaco && (window.monaco.typescript || window.monaco.languages.typescript);
  const sdk = ts && ts.typescriptDefaults.getExtraLibs()["file:///sdk.d.ts"];
  return Boolean(sdk && sdk.content.includes("%s"));
}"""


def test_editor_adds_replaces_and_deletes_a_secret(
    page: Any, live_server: Any, personas: Any, console_errors: list[str]
) -> None:
    action = add_custom_action(personas.tenant_a, "crm-lookup")
    sign_in(page, live_server, "a-editor")
    page.wait_for_url("**/t/acme/actions/")
    page.goto(f"{live_server.url}/t/acme/actions/crm-lookup/")
    panel = page.locator("#secrets")
    expect(panel.locator("#no-secrets")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    # A lower-case name is refused next to the field and in the summary; the name stays, the value does not.
    panel.get_by_label("Name").fill("crm_key")
    panel.get_by_label("Value").fill(VALUE)
    panel.get_by_role("button", name="Save secret").click()
    expect(panel.locator("#field-secret-name .errorlist")).to_contain_text("upper-case letter")
    expect(panel.locator("#secret-errors")).to_contain_text("Name")
    expect(panel.get_by_label("Name")).to_have_value("crm_key")
    expect(panel.get_by_label("Value")).to_have_value("")
    assert secrets_for_execution(action.pk) == {}

    panel.get_by_label("Name").fill("CRM_KEY")
    panel.get_by_label("Value").fill(VALUE)
    panel.get_by_role("button", name="Save secret").click()
    expect(panel.locator("#secrets-notice")).to_have_text("Added the secret CRM_KEY.")
    row = panel.locator('tr[data-secret="CRM_KEY"]')
    expect(row).to_contain_text("a-editor")
    expect(panel.locator("#secret-errors")).to_have_count(0)
    assert VALUE not in page.content()
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE}
    # The code editor learns the new name at once: input.secrets.CRM_KEY completes and type-checks.
    page.wait_for_function(SDK_KNOWS % "CRM_KEY")

    # Replacing: the same name with a new value.
    panel.get_by_label("Name").fill("CRM_KEY")
    panel.get_by_label("Value").fill(VALUE + "-rotated")
    panel.get_by_label("Value").press("Enter")
    expect(panel.locator("#secrets-notice")).to_have_text("Replaced the secret CRM_KEY.")
    expect(panel.locator("tr[data-secret]")).to_have_count(1)
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE + "-rotated"}

    # Deleting asks first: dismissing keeps the secret, accepting deletes it.
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.get_by_role("link", name="Delete… CRM_KEY").click()
    expect(row).to_be_visible()
    assert asked and "Delete the secret CRM_KEY?" in asked[0]
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE + "-rotated"}

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("link", name="Delete… CRM_KEY").click()
    expect(panel.locator("#secrets-notice")).to_have_text("Deleted the secret CRM_KEY.")
    expect(panel.locator("#no-secrets")).to_be_visible()
    assert secrets_for_execution(action.pk) == {}
    page.wait_for_function(f"() => !({SDK_KNOWS % 'CRM_KEY'})()")
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped the panel only
    assert VALUE not in page.content()
    assert console_errors == []
