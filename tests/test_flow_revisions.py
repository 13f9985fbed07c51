"""A flow's revision history and the per-slot diff of two revisions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flows_app.services import BindingSpec, save_flow_slots
from tenants.acting import Acting
from tests.flow_helpers import SYSTEM, flow_of

URL = "/t/acme/flows/login/revisions/"
POST_AUTH = "login.post-auth"
PRE_CREDENTIAL = "login.pre-credential-check"
SECRET = "s3cret-signing-value-123"


def risk_block(threshold: int) -> BindingSpec:
    return BindingSpec("block-by-risk-score", "1.0.0", {"threshold": threshold, "message": "risky"})


def webhook(secret: str = SECRET) -> BindingSpec:
    return BindingSpec("webhook-emit", "1.0.0", {"url": "https://hooks.example.com/in", "secret": secret})


def rate_limit() -> BindingSpec:
    return BindingSpec("rate-limit-by-ip", "1.1.0", {"limit": 5, "window_seconds": 60})


def save(personas: Any, slots: dict[str, list[BindingSpec]], comment: str = "") -> int:
    flow = flow_of(personas.tenant_a)
    assert flow.current_revision is not None
    revision = save_flow_slots(
        flow,
        slots,
        expected_revision=flow.current_revision.number,
        comment=comment,
        acting=Acting(SYSTEM.actor, SYSTEM.meta, user=personas.editor),
    )
    return revision.number


@pytest.fixture
def history(personas: Any) -> Any:
    """r1 empty · r2 risk block (50) and a webhook in post-auth, a rate limit in pre-credential-check
    · r3 risk block at 70, webhook detached, demand-mfa attached (pre-credential-check unchanged)."""
    save(personas, {POST_AUTH: [risk_block(50), webhook()], PRE_CREDENTIAL: [rate_limit()]}, "first setup")
    demand_mfa = BindingSpec("demand-mfa-by-risk-score", "1.0.0", {"threshold": 30})
    save(personas, {POST_AUTH: [risk_block(70), demand_mfa]}, "tighten risk")
    return personas


def test_it_lists_revisions_with_time_author_comment_and_binding_count(client: Any, history: Any) -> None:
    client.force_login(history.viewer)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    rows = re.findall(r"<tr>.*?</tr>", html, re.S)[1:]
    assert [re.search(r"<code>r(\d+)</code>", row).group(1) for row in rows] == ["3", "2", "1"]  # type: ignore[union-attr]
    assert "tighten risk" in rows[0] and "a-editor" in rows[0] and "current" in rows[0]
    assert '<td class="num">3</td>' in rows[0]  # risk block, demand-mfa, rate limit
    assert "first setup" in rows[1] and '<td class="num">3</td>' in rows[1]
    assert "Created with the tenant" in rows[2] and '<td class="num">0</td>' in rows[2]
    assert "UTC" in rows[0]
    # the compare form preselects the last change
    assert re.search(r'name="from" value="2"[^>]*checked', html)
    assert re.search(r'name="to" value="3"[^>]*checked', html)
    assert 'action="/t/acme/flows/login/revisions/diff/"' in html


def test_the_diff_shows_attached_detached_updated_and_collapses_unchanged(client: Any, history: Any) -> None:
    client.force_login(history.viewer)
    response = client.get(URL + "diff/", {"from": "2", "to": "3"})
    assert response.status_code == 200
    html = response.content.decode()
    post_auth = html[html.index('id="slot-loginpost-auth"') :]
    post_auth = post_auth[: post_auth.index("</section>")]
    assert "+ attached" in post_auth and "demand-mfa-by-risk-score" in post_auth
    assert "− detached" in post_auth and "webhook-emit" in post_auth
    assert "~ updated" in post_auth
    assert re.search(
        r"config\.threshold</th><td class=\"diff-del\">.*?50.*?</td><td class=\"diff-add\">.*?70", post_auth
    )
    # the risk block stays at position 1, version 1.0.0: not listed as changed
    assert "Position</th>" not in post_auth and "Version</th>" not in post_auth
    pre_credential = html[html.index('id="slot-loginpre-credential-check"') :]
    pre_credential = pre_credential[: pre_credential.index("</section>")]
    assert "No changes in this slot." in pre_credential
    assert "<details>" in pre_credential and "1 unchanged binding" in pre_credential
    assert "rate-limit-by-ip" in pre_credential
    assert "<strong>3</strong> bindings changed" in html
    # the detached webhook's secret is masked, never shown
    assert SECRET not in html and "••••••" in html


def test_the_diff_shows_version_position_and_settings_changes(client: Any, history: Any) -> None:
    save(
        history,
        {
            PRE_CREDENTIAL: [
                BindingSpec("domain-blocklist", "1.0.0", {"domains": ["spam.example"]}),
                BindingSpec(
                    "rate-limit-by-ip",
                    "1.0.0",
                    {"limit": 5, "window_seconds": 60},
                    enabled=False,
                    on_error="continue",
                    timeout_ms=300,
                ),
            ]
        },
    )
    client.force_login(history.viewer)
    html = client.get(URL + "diff/", {"from": "3", "to": "4"}).content.decode()
    for before, after in [
        ("1.1.0", "1.0.0"),
        ("enabled", "disabled"),
        ("block", "continue"),
        ("1000 ms", "300 ms"),
        ("1", "2"),
    ]:
        assert re.search(
            rf'<td class="diff-del"><span class="sr-only">before: </span><code>{before}</code></td>'
            rf'<td class="diff-add"><span class="sr-only">after: </span>→ <code>{after}</code>',
            html,
        )


def test_a_changed_secret_is_reported_without_its_value(client: Any, history: Any) -> None:
    save(history, {POST_AUTH: [webhook()]})  # r4: webhook back (a new attachment)
    save(history, {POST_AUTH: [webhook("another-secret-value-456")]})  # r5: only the secret changed
    client.force_login(history.viewer)
    html = client.get(URL + "diff/", {"from": "4", "to": "5"}).content.decode()
    assert "~ updated" in html and "secret values" in html and "(changed)" in html
    assert SECRET not in html and "another-secret-value-456" not in html


def test_the_diff_defaults_to_the_last_change_and_works_backwards(client: Any, history: Any) -> None:
    client.force_login(history.viewer)
    html = client.get(URL + "diff/").content.decode()
    assert '<option value="2" selected>' in html and '<option value="3" selected>' in html
    backwards = client.get(URL + "diff/", {"from": "3", "to": "1"}).content.decode()
    assert backwards.count("− detached") == 3
    same = client.get(URL + "diff/", {"from": "2", "to": "2"}).content.decode()
    assert "<strong>0</strong> bindings changed" in same


def test_a_new_flow_diff_has_only_one_revision(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(URL + "diff/")
    assert response.status_code == 200
    assert "No actions in this slot in either revision." in response.content.decode()


@pytest.mark.parametrize("params", [{"from": "9", "to": "1"}, {"from": "1", "to": "x"}])
def test_an_unknown_revision_is_404(client: Any, personas: Any, params: dict[str, str]) -> None:
    client.force_login(personas.viewer)
    assert client.get(URL + "diff/", params).status_code == 404


def test_other_tenants_and_unknown_flows_are_404(client: Any, history: Any) -> None:
    client.force_login(history.outsider)
    assert client.get(URL).status_code == 404
    assert client.get(URL + "diff/", {"from": "2", "to": "3"}).status_code == 404
    client.force_login(history.viewer)
    assert client.get("/t/acme/flows/no-such-flow/revisions/").status_code == 404
    assert client.get("/t/globex/flows/login/revisions/diff/").status_code == 404
