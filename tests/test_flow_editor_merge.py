"""After a stale save the flow editor merges changes to different bindings (shown before saving),
and for the same binding shows setting by setting what would be overwritten, to overwrite or
reload. Saving again without a choice is refused again."""

from __future__ import annotations

from typing import Any

import pytest

from flows_app.models import Binding, FlowRevision
from flows_app.services import BindingSpec, save_flow_slots
from tests.editor_form import URL, press, uids
from tests.factories import acting_as
from tests.flow_helpers import attach, flow_of

PRE_CREDENTIAL = "login.pre-credential-check"
POST_AUTH = "login.post-auth"
LIMIT = {"limit": 7, "window_seconds": 30, "message": "Wait"}


@pytest.fixture
def editor_client(client: Any, personas: Any) -> Any:
    client.force_login(personas.editor)
    return client


@pytest.fixture
def two_limits(personas: Any) -> list[str]:
    """r2: two rate limits in pre-credential-check; their uids in order."""
    flow = attach(
        personas.tenant_a,
        PRE_CREDENTIAL,
        BindingSpec("rate-limit-by-ip", "1.0.0", LIMIT),
        BindingSpec("rate-limit-by-user", "1.0.0", {"max_attempts": 3, "window_seconds": 300}),
    )
    rows = Binding.objects.filter(revision=flow.current_revision).order_by("position")
    return [b.key.hex for b in rows]


def admin_saves(personas: Any, specs: list[BindingSpec], trigger: str = PRE_CREDENTIAL) -> FlowRevision:
    flow = flow_of(personas.tenant_a)
    return save_flow_slots(
        flow,
        {trigger: specs},
        expected_revision=flow.current_revision.number,  # type: ignore[union-attr]
        acting=acting_as(personas.admin),
    )


def current(personas: Any) -> FlowRevision:
    revision = flow_of(personas.tenant_a).current_revision
    assert revision is not None
    return revision


def test_changes_to_different_bindings_merge_and_are_shown_before_saving(
    editor_client: Any, personas: Any, two_limits: list[str]
) -> None:
    by_ip, by_user = two_limits
    html = editor_client.get(URL).content.decode()  # editing r2
    # The admin changes the IP limit (r3); the editor changes the user limit.
    admin_saves(
        personas,
        [
            BindingSpec("rate-limit-by-ip", "1.0.0", {**LIMIT, "limit": 3}, key=Binding.objects.get(key=by_ip).key),
            BindingSpec(
                "rate-limit-by-user",
                "1.0.0",
                {"max_attempts": 3, "window_seconds": 300},
                key=Binding.objects.get(key=by_user).key,
            ),
        ],
    )
    refused = press(editor_client, html, "save", **{f"b-{by_user}-config-max_attempts": "9"})
    assert refused.status_code == 409
    page = refused.content.decode()
    assert "touch different bindings, so they can be merged" in page and 'value="merge"' in page
    assert current(personas).number == 3

    merged = press(editor_client, page, "merge")
    assert merged.status_code == 200
    shown = merged.content.decode()
    assert "Taken from r3: login.pre-credential-check › Rate limit by IP." in shown
    assert f'name="b-{by_ip}-config-limit" id="id_b-{by_ip}-config-limit" value="3"' in shown  # theirs
    assert f'name="b-{by_user}-config-max_attempts" id="id_b-{by_user}-config-max_attempts" value="9"' in shown
    assert 'name="expected_revision" value="3"' in shown
    assert "As saved in r3: changed there since you began." in shown  # their binding's card is open
    assert current(personas).number == 3  # shown, not saved

    assert press(editor_client, shown, "save").status_code == 302
    saved = {b.action.slug: b.config for b in current(personas).bindings.all()}
    assert current(personas).number == 4
    assert saved["rate-limit-by-ip"]["limit"] == 3 and saved["rate-limit-by-user"]["max_attempts"] == 9


def test_an_attached_binding_and_a_reorder_merge(editor_client: Any, personas: Any, two_limits: list[str]) -> None:
    by_ip, by_user = two_limits
    html = editor_client.get(URL).content.decode()
    keep = [
        BindingSpec("rate-limit-by-ip", "1.0.0", LIMIT, key=Binding.objects.get(key=by_ip).key),
        BindingSpec("rate-limit-by-user", "1.0.0", {"max_attempts": 3, "window_seconds": 300}),
        BindingSpec("domain-blocklist", "1.0.0", {"domains": ["spam.example"]}),
    ]
    keep[1].key = Binding.objects.get(key=by_user).key
    admin_saves(personas, keep)
    # Meanwhile the editor moved the user limit first.
    refused = press(editor_client, html, "save", **{f"order-{PRE_CREDENTIAL}": f"{by_user},{by_ip}"})
    assert refused.status_code == 409
    merged = press(editor_client, refused.content.decode(), "merge").content.decode()
    order = uids(merged, PRE_CREDENTIAL)
    assert order[:2] == [by_user, by_ip] and len(order) == 3  # my order, their new binding after its neighbour


def test_the_same_binding_changed_twice_shows_what_would_be_overwritten(
    editor_client: Any, personas: Any, two_limits: list[str]
) -> None:
    by_ip, by_user = two_limits
    html = editor_client.get(URL).content.decode()
    ip_key, user_key = Binding.objects.get(key=by_ip).key, Binding.objects.get(key=by_user).key
    admin_saves(
        personas,
        [
            BindingSpec("rate-limit-by-ip", "1.0.0", {**LIMIT, "limit": 3}, key=ip_key, on_error="continue"),
            BindingSpec("rate-limit-by-user", "1.0.0", {"max_attempts": 5, "window_seconds": 300}, key=user_key),
        ],
    )
    mine = {f"b-{by_ip}-config-limit": "20", f"b-{by_ip}-timeout_ms": "300"}
    refused = press(editor_client, html, "save", **mine)
    assert refused.status_code == 409
    page = refused.content.decode()
    assert 'value="merge"' not in page and 'value="overwrite"' in page and 'id="reload-link"' in page
    table = page[page.index('id="conflict-1"') : page.index("</table>", page.index('id="conflict-1"'))]
    assert "Rate limit by IP" in table
    assert '<th scope="row">config.limit</th><td><code>7</code></td>' in table
    assert '<td class="diff-del"><code>3</code></td><td class="diff-add"><code>20</code>' in table
    assert "On error" in table and "Timeout" in table and "config.window_seconds" not in table
    # A merge is not offered, and pressing Save again changes nothing.
    assert press(editor_client, page, "merge").status_code == 409
    assert press(editor_client, page, "save").status_code == 409
    assert current(personas).number == 3

    # Overwrite: my version of that binding, their other change kept, shown before it is saved.
    shown = press(editor_client, page, "overwrite")
    assert shown.status_code == 200
    text = shown.content.decode()
    assert "Your version of login.pre-credential-check › Rate limit by IP replaces the one saved in r3." in text
    assert "Your version, replacing the one saved in r3." in text
    assert current(personas).number == 3
    assert press(editor_client, text, "save").status_code == 302
    saved = {b.action.slug: b for b in current(personas).bindings.all()}
    assert saved["rate-limit-by-ip"].config["limit"] == 20 and saved["rate-limit-by-ip"].timeout_ms == 300
    assert saved["rate-limit-by-user"].config["max_attempts"] == 5  # theirs, untouched by me


def test_a_binding_removed_on_one_side_and_changed_on_the_other_is_a_conflict(
    editor_client: Any, personas: Any, two_limits: list[str]
) -> None:
    by_ip, by_user = two_limits
    html = editor_client.get(URL).content.decode()
    admin_saves(
        personas,
        [BindingSpec("rate-limit-by-ip", "1.0.0", {**LIMIT, "limit": 3}, key=Binding.objects.get(key=by_ip).key)],
    )
    refused = press(editor_client, html, "save", **{f"b-{by_user}-config-max_attempts": "9"})
    page = refused.content.decode()
    assert refused.status_code == 409 and "Rate limit by user" in page
    assert '<td class="diff-del"><code>(removed)</code></td><td class="diff-add"><code>in the flow</code>' in page


def test_a_secret_replaced_meanwhile_survives_the_merge_and_is_never_shown(
    editor_client: Any, personas: Any, two_limits: list[str]
) -> None:
    from flows_app.bindings import stored_secrets

    flow = attach(
        personas.tenant_a,
        "login.post-login",
        BindingSpec("webhook-emit", "1.0.0", {"url": "https://hooks.example.com/in", "secret": "first-secret-0001"}),
    )
    hook_key = Binding.objects.get(revision=flow.current_revision, trigger="login.post-login").key
    html = editor_client.get(URL).content.decode()  # editing r3
    replaced = {"url": "https://hooks.example.com/in", "secret": "second-secret-0002"}
    admin_saves(personas, [BindingSpec("webhook-emit", "1.0.0", replaced, key=hook_key)], trigger="login.post-login")
    by_user = two_limits[1]
    refused = press(editor_client, html, "save", **{f"b-{by_user}-config-max_attempts": "9"})
    assert refused.status_code == 409
    merged = press(editor_client, refused.content.decode(), "merge").content.decode()
    assert "Taken from r4: login.post-login › Webhook emit." in merged
    assert "second-secret-0002" not in merged and "first-secret-0001" not in merged
    assert press(editor_client, merged, "save").status_code == 302
    hook = Binding.objects.get(revision=current(personas), trigger="login.post-login")
    assert stored_secrets(hook) == {"secret": "second-secret-0002"}


def test_merge_and_overwrite_without_a_stale_save_or_with_a_made_up_revision_answer_plainly(
    editor_client: Any, personas: Any, two_limits: list[str]
) -> None:
    html = editor_client.get(URL).content.decode()
    for op in ("merge", "overwrite"):
        response = press(editor_client, html, op)
        assert response.status_code == 200
        assert "Nothing to merge: you are editing r2, the running revision." in response.content.decode()
    for made_up in ("999999999", "abc", "-1"):
        assert press(editor_client, html, "merge", expected_revision=made_up).status_code == 200
    unknown = press(editor_client, html, "save", expected_revision="7")
    assert unknown.status_code == 409
    assert "Revision 7 is not a revision of this flow" in unknown.content.decode()
    assert current(personas).number == 2
