"""Binding cards of the flow editor collapse to one summary line; without JavaScript Expand and
Collapse post the whole editor like every other button, and nothing typed is lost."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from flows_app.models import Binding
from flows_app.services import BindingSpec
from tests.editor_form import URL, add, field_block, press
from tests.flow_helpers import attach, flow_of

PRE_CREDENTIAL = "login.pre-credential-check"
POST_AUTH = "login.post-auth"
POST_LOGIN = "login.post-login"
SIGNING_SECRET = "s3cret-signing-key-0001"


@pytest.fixture
def editor_client(client: Any, personas: Any) -> Any:
    client.force_login(personas.editor)
    return client


@pytest.fixture
def bound(personas: Any) -> dict[str, str]:
    """A rate limit (disabled, continue on error) and a webhook with a stored secret: their uids."""
    attach(
        personas.tenant_a,
        PRE_CREDENTIAL,
        BindingSpec(
            "rate-limit-by-ip",
            "1.1.0",
            {"limit": 7, "window_seconds": 30, "message": "Wait", "allow_cidrs": ["10.0.0.0/8", "192.168.0.0/16"]},
            enabled=False,
            on_error="continue",
            timeout_ms=250,
        ),
    )
    hook = {"url": "https://hooks.example.com/in", "secret": SIGNING_SECRET}
    flow = attach(personas.tenant_a, POST_LOGIN, BindingSpec("webhook-emit", "1.0.0", hook))
    keys = {b.action.slug: b.key.hex for b in Binding.objects.filter(revision=flow.current_revision)}
    return {"limit": keys["rate-limit-by-ip"], "hook": keys["webhook-emit"]}


def is_collapsed(html: str, uid: str) -> bool:
    match = re.search(rf'<div class="binding-body" id="b-{uid}-body"( hidden)?>', html)
    assert match, f"no card body for {uid}"
    return match.group(1) is not None


def summary_of(html: str, uid: str) -> str:
    """The card's summary line as text (tags dropped, white space folded)."""
    start = html.index(f'id="b-{uid}-summary"')
    line = html[html.index(">", start) + 1 : html.index('<span class="binding-tools">', start)]
    return " ".join(re.sub(r"<[^>]+>", " ", line).split())


def test_it_shows_every_saved_binding_as_one_summary_line(editor_client: Any, bound: dict[str, str]) -> None:
    html = editor_client.get(URL).content.decode()
    assert is_collapsed(html, bound["limit"]) and is_collapsed(html, bound["hook"])
    assert 'id="b-{}-toggle"'.format(bound["limit"]) in html and 'aria-expanded="false"' in html
    # Settings come in the stored schema's property order, which PostgreSQL's jsonb does not keep
    # as written; so the settings are compared as a set after the fixed head of the line.
    head = "disabled on error continue timeout 250 ms "
    line = summary_of(html, bound["limit"])
    settings = ["limit 7", "window_seconds 30", "message Wait", "allow_cidrs 10.0.0.0/8, 192.168.0.0/16"]
    assert line.startswith(head) and all(setting in line for setting in settings)
    assert len(line) == len(head) + len(" ".join(settings))
    # A secret is never part of the line, not even its name; the page never holds its value.
    assert summary_of(html, bound["hook"]).startswith("enabled on error block timeout 1000 ms url https://hooks")
    assert "secret" not in summary_of(html, bound["hook"])
    assert SIGNING_SECRET not in html
    # The collapsed card's form is still in the page, so Save posts it unchanged.
    assert 'value="7"' in field_block(html, f"b-{bound['limit']}-config-limit")


def test_expanding_and_collapsing_without_javascript_keeps_what_was_typed(
    editor_client: Any, personas: Any, bound: dict[str, str]
) -> None:
    uid = bound["limit"]
    html = editor_client.get(URL).content.decode()
    opened = press(editor_client, html, f"toggle:{uid}").content.decode()
    assert not is_collapsed(opened, uid) and is_collapsed(opened, bound["hook"])
    assert f'name="b-{uid}-expanded" value="1"' in opened
    assert re.search(rf'id="b-{uid}-toggle"[^>]*aria-expanded="true"[^>]*autofocus', opened)

    typed = {f"b-{uid}-config-limit": "12", f"b-{uid}-timeout_ms": "400", f"b-{uid}-enabled": "on"}
    closed = press(editor_client, opened, f"toggle:{uid}", **typed).content.decode()
    assert is_collapsed(closed, uid)
    assert 'value="12"' in field_block(closed, f"b-{uid}-config-limit")
    assert summary_of(closed, uid).startswith("enabled on error continue timeout 400 ms limit 12 ")
    assert flow_of(personas.tenant_a).current_revision.number == 3  # type: ignore[union-attr]

    assert press(editor_client, closed, "save").status_code == 302
    saved = Binding.objects.get(revision=flow_of(personas.tenant_a).current_revision, key=uuid.UUID(uid))
    assert (saved.config["limit"], saved.timeout_ms, saved.enabled) == (12, 400, True)


def test_a_card_stays_open_across_other_buttons_and_an_added_one_opens(
    editor_client: Any, bound: dict[str, str]
) -> None:
    uid = bound["limit"]
    opened = press(editor_client, editor_client.get(URL).content.decode(), f"toggle:{uid}").content.decode()
    html, new = add(editor_client, opened, POST_AUTH, "block-by-risk-score")
    assert not is_collapsed(html, uid) and not is_collapsed(html, new) and is_collapsed(html, bound["hook"])


def test_a_card_with_an_error_opens_to_show_it(editor_client: Any, bound: dict[str, str]) -> None:
    html = editor_client.get(URL).content.decode()
    uid = bound["limit"]
    refused = press(editor_client, html, "save", **{f"b-{uid}-config-limit": "ten"})
    assert refused.status_code == 422
    page = refused.content.decode()
    assert not is_collapsed(page, uid) and is_collapsed(page, bound["hook"])
    assert "Enter a whole number" in field_block(page, f"b-{uid}-config-limit")


def test_viewers_see_every_card_whole(client: Any, personas: Any, bound: dict[str, str]) -> None:
    client.force_login(personas.viewer)
    html = client.get(URL).content.decode()
    assert not is_collapsed(html, bound["limit"]) and "data-toggle-binding" not in html
