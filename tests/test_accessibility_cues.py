"""Cues an operator needs before they hit a wall: who may publish, the Tab key in the code
editor, a console page even when refused, and a secret's length rule before it is broken."""

from __future__ import annotations

import re
from typing import Any

from actions_app.versioning import VersionDraft, save_action_version
from tests.flow_helpers import SYSTEM, custom_action

ACTION_PAGE = "/t/acme/actions/gate/"
SOURCE = (
    "export async function execute(input: ActionInput): Promise<ActionResult> {\n  return { kind: 'continue' };\n}\n"
)


def with_a_draft(personas: Any) -> None:
    """Action "gate": 0.1.0 published, 0.1.1 a draft waiting to be published."""
    action = custom_action(personas.tenant_a, "gate", "return { kind: 'continue' };", ["login.post-auth"])
    draft = VersionDraft(SOURCE, {"type": "object", "properties": {}}, ["login.post-auth"])
    save_action_version(action, draft, acting=SYSTEM)


def history_row(html: str, version: str) -> str:
    match = re.search(rf"<tr>\s*<td><a [^>]*><code>{re.escape(version)}</code>.*?</tr>", html, re.S)
    assert match, f"no history row for {version}"
    return match.group(0)


def test_it_shows_an_editor_publish_disabled_and_whom_to_ask(client: Any, personas: Any) -> None:
    with_a_draft(personas)
    client.force_login(personas.editor)
    row = history_row(client.get(ACTION_PAGE).content.decode(), "0.1.1")
    assert re.search(r"<button [^>]*disabled[^>]*>Publish</button>", row)
    assert "ask an admin" in row.lower()
    assert "/publish/" not in row  # no form to post: the button is a cue, the view still refuses


def test_it_shows_an_admin_a_working_publish_button(client: Any, personas: Any) -> None:
    with_a_draft(personas)
    client.force_login(personas.admin)
    row = history_row(client.get(ACTION_PAGE).content.decode(), "0.1.1")
    assert "/versions/0.1.1/publish/" in row and "ask an admin" not in row.lower()
    assert not re.search(r"<button [^>]*disabled[^>]*>Publish</button>", row)


def test_it_offers_a_viewer_no_publish_at_all(client: Any, personas: Any) -> None:
    with_a_draft(personas)
    client.force_login(personas.viewer)
    row = history_row(client.get(ACTION_PAGE).content.decode(), "0.1.1")
    assert "Publish" not in row


def test_it_explains_the_tab_key_next_to_the_code_editor(client: Any, personas: Any) -> None:
    with_a_draft(personas)
    client.force_login(personas.editor)
    html = client.get(ACTION_PAGE).content.decode()
    field = html.split('id="field-source"', 1)[1].split('id="diagnostics"', 1)[0]
    assert "<kbd>Ctrl</kbd>+<kbd>M</kbd>" in field and "Tab" in field
    # A read-only editor does not keep the Tab key, so a viewer is told nothing.
    client.force_login(personas.viewer)
    assert "tab-focus-help" not in client.get(ACTION_PAGE).content.decode()


def test_a_refusal_keeps_the_console_navigation(client: Any, personas: Any) -> None:
    with_a_draft(personas)
    client.force_login(personas.editor)
    refused = client.post("/t/acme/actions/gate/versions/0.1.1/publish/")
    assert refused.status_code == 403
    html = refused.content.decode()
    assert "Not allowed" in html
    nav = html.split('<nav class="primary" aria-label="Authentication">', 1)[1].split("</nav>", 1)[0]
    for section in ("actions", "flows", "audit", "settings"):
        assert f'href="/t/acme/{section}/"' in nav
    assert '<span class="role">editor</span>' in html
    assert '<option value="acme"' in html and "selected" in html.split('<option value="acme"', 1)[1].split(">", 1)[0]


def test_it_shows_a_secrets_length_rule_before_it_is_broken(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    html = client.get("/t/acme/actions/webhook-emit/").content.decode()
    field = html.split('id="field-config-secret"', 1)[1].split("</div>", 1)[0]
    hint = re.search(r'<p class="help[^"]*" id="([^"]+)">([^<]*16[^<]*)</p>', field)
    assert hint and "16 to 200 characters" in hint.group(2)
    described_by = re.search(r'<input type="password"[^>]*aria-describedby="([^"]+)"', field)
    assert described_by and hint.group(1) in described_by.group(1).split()
