"""The flow editor page without JavaScript: every button posts the whole editor, as a browser would."""

from __future__ import annotations

import re
from typing import Any

import pytest
from guardian.shortcuts import remove_perm

from actions_app.models import Action
from actions_app.versioning import VersionDraft, publish_version, save_action_version
from audit_app.models import AuditEvent
from flows_app.bindings import stored_secrets
from flows_app.models import ActionExecution, Binding, FlowRevision
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec, save_flow_slots
from tenants.models import TenantRoleGroup
from tests.editor_form import add, editor, field_block, form_values, press, uids
from tests.factories import acting_as
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of

URL = "/t/acme/flows/login/"
TRY_URL = "/t/acme/flows/login/try/"
PRE_CREDENTIAL = "login.pre-credential-check"
POST_AUTH = "login.post-auth"
POST_LOGIN = "login.post-login"
HTMX = {"HX-Request": "true", "HX-Target": "flow-editor"}


def current_revision(tenant: Any) -> FlowRevision:
    revision = flow_of(tenant).current_revision
    assert revision is not None
    return revision


@pytest.fixture
def editor_client(client: Any, personas: Any) -> Any:
    client.force_login(personas.editor)
    return client


# Attaching and validating


def test_it_attaches_a_template_after_showing_config_errors_next_to_the_field(
    editor_client: Any, personas: Any
) -> None:
    html, uid = add(editor_client, editor(editor_client), POST_AUTH, "block-by-risk-score")
    assert "Added Block by risk score 1.0.0 to login.post-auth" in html
    assert 'value="70"' in field_block(html, f"b-{uid}-config-threshold")  # the schema's default

    response = press(
        editor_client,
        html,
        "save",
        **{f"b-{uid}-config-threshold": "150", f"b-{uid}-config-message": "Too risky for us"},
    )
    assert response.status_code == 422
    page = response.content.decode()
    threshold = field_block(page, f"b-{uid}-config-threshold")
    assert "between 0 and 100" in threshold and 'value="150"' in threshold
    assert 'value="Too risky for us"' in page
    assert 'id="editor-errors"' in page and f'href="#id_b-{uid}-config-threshold"' in page
    assert current_revision(personas.tenant_a).number == 1

    response = press(editor_client, page, "save", **{f"b-{uid}-config-threshold": "80"})
    assert response.status_code == 302 and response["Location"] == URL
    assert "Saved revision 2" in editor_client.get(URL).content.decode()
    binding = Binding.objects.get(revision=current_revision(personas.tenant_a))
    assert (binding.trigger, binding.action.slug, binding.pinned_version.version) == (
        POST_AUTH,
        "block-by-risk-score",
        "1.0.0",
    )
    assert binding.config == {"threshold": 80, "message": "Too risky for us"}
    assert binding.key.hex == uid  # the editor's id of the binding is its stable key
    event = AuditEvent.objects.get(type="flow.action_attached")
    assert (event.action_slug, event.flow_revision, event.actor_id) == (
        "block-by-risk-score",
        2,
        str(personas.editor.pk),
    )


def test_it_offers_only_compatible_actions_and_published_versions(editor_client: Any, personas: Any) -> None:
    tenant = personas.tenant_a
    gate = custom_action(tenant, "risk-gate", "return { kind: 'continue' };", [POST_AUTH])
    draft = VersionDraft(
        "export async function execute(input: ActionInput): Promise<ActionResult> { return { kind: 'continue' }; }\n",
        {"type": "object", "properties": {}},
        [POST_AUTH],
    )
    save_action_version(gate, draft, acting=SYSTEM)  # 0.1.1, a draft
    unpublished = custom_action(tenant, "never-published", "return { kind: 'continue' };", [POST_AUTH])
    unpublished.versions.update(status="draft")

    html = editor(editor_client)
    post_auth_offer = html[
        html.index('id="add-login.post-auth"') : html.index("</select>", html.index('id="add-login.post-auth"'))
    ]
    assert 'value="risk-gate"' in post_auth_offer and "0.1.0" in post_auth_offer
    assert 'value="block-by-risk-score"' in post_auth_offer
    assert 'value="never-published"' not in post_auth_offer
    assert 'value="rate-limit-by-ip"' not in post_auth_offer  # not compatible with post-auth
    token_offer = html[
        html.index('id="add-login.pre-token"') : html.index("</select>", html.index('id="add-login.pre-token"'))
    ]
    assert 'value="decorate-token"' in token_offer and 'value="block-by-risk-score"' not in token_offer

    html, uid = add(editor_client, html, POST_AUTH, "risk-gate")
    select = html[html.index(f'id="b-{uid}-version"') : html.index("</select>", html.index(f'id="b-{uid}-version"'))]
    assert re.findall(r'<option value="([^"]+)"', select) == ["0.1.0"]
    # a forged post cannot attach what is not offered
    response = press(editor_client, html, f"add:{POST_AUTH}", **{f"add-{POST_AUTH}": "never-published"})
    assert "Choose an action to add to this slot." in response.content.decode()
    assert len(uids(response.content.decode(), POST_AUTH)) == 1


# Editing without JavaScript


def test_add_move_and_remove_work_without_javascript_and_keep_what_was_typed(editor_client: Any, personas: Any) -> None:
    html, first = add(editor_client, editor(editor_client), PRE_CREDENTIAL, "rate-limit-by-ip")
    typed = {f"b-{first}-config-limit": "25", f"b-{first}-config-message": "Slow down", f"b-{first}-timeout_ms": "750"}
    response = press(
        editor_client, html, f"add:{PRE_CREDENTIAL}", **typed, **{f"add-{PRE_CREDENTIAL}": "domain-allowlist"}
    )
    html = response.content.decode()
    first_, second = uids(html, PRE_CREDENTIAL)
    assert first_ == first
    assert 'value="25"' in field_block(html, f"b-{first}-config-limit")
    assert 'value="Slow down"' in html and 'value="750"' in html

    # Move the new one up: only the order field changes, every typed value stays.
    html = press(
        editor_client, html, f"up:{second}", **{f"b-{second}-config-domains": "example.com\nexample.org"}
    ).content.decode()
    assert uids(html, PRE_CREDENTIAL) == [second, first]
    assert "example.com\nexample.org" in html and 'value="25"' in html
    assert f'id="b-{second}-up" data-move="up" disabled' in html

    html = press(editor_client, html, f"down:{second}").content.decode()
    assert uids(html, PRE_CREDENTIAL) == [first, second]

    html = press(editor_client, html, f"remove:{first}").content.decode()
    assert uids(html, PRE_CREDENTIAL) == [second]
    assert f"b-{first}-config-limit" not in html
    assert "example.com\nexample.org" in html

    assert press(editor_client, html, "save").status_code == 302
    binding = Binding.objects.get(revision=current_revision(personas.tenant_a))
    assert (binding.action.slug, binding.position, binding.config["domains"]) == (
        "domain-allowlist",
        0,
        ["example.com", "example.org"],
    )


def test_saving_keeps_the_order_of_the_order_field(editor_client: Any, personas: Any) -> None:
    html, a = add(editor_client, editor(editor_client), PRE_CREDENTIAL, "rate-limit-by-ip")
    html, b = add(editor_client, html, PRE_CREDENTIAL, "rate-limit-by-user")
    # What drag and drop does: rewrite the slot's order field, rename nothing.
    response = press(editor_client, html, "save", **{f"order-{PRE_CREDENTIAL}": f"{b},{a}"})
    assert response.status_code == 302
    rows = Binding.objects.filter(revision=current_revision(personas.tenant_a)).order_by("position")
    assert [r.action.slug for r in rows] == ["rate-limit-by-user", "rate-limit-by-ip"]


def test_a_config_list_row_can_be_added_without_saving(editor_client: Any, personas: Any) -> None:
    html, uid = add(editor_client, editor(editor_client), POST_LOGIN, "redirect-by-group")
    response = press(
        editor_client,
        html,
        None,
        **{f"b-{uid}-config-rules.0.group": "admins", f"b-{uid}-config-rules-add-row": "1"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert f'name="b-{uid}-config-rules.1.group"' in page and 'value="admins"' in page
    assert current_revision(personas.tenant_a).number == 1


# Versions


@pytest.fixture
def pinned_rate_limit(personas: Any) -> str:
    flow = attach(
        personas.tenant_a,
        PRE_CREDENTIAL,
        BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 7, "window_seconds": 30, "message": "Wait"}),
    )
    return Binding.objects.get(revision=flow.current_revision).key.hex


def test_changing_the_version_shows_that_versions_config_form(editor_client: Any, pinned_rate_limit: str) -> None:
    uid = pinned_rate_limit
    html = editor(editor_client)
    select = html[html.index(f'id="b-{uid}-version"') : html.index("</select>", html.index(f'id="b-{uid}-version"'))]
    assert '<option value="1.1.0">1.1.0 (latest)</option>' in select
    assert '<option value="1.0.0" selected>1.0.0</option>' in select
    assert f"b-{uid}-config-allow_cidrs" not in html

    # The no-JS "Show" button (htmx posts the same on change).
    response = press(editor_client, html, f"show:{uid}", **{f"b-{uid}-version": "1.1.0", f"b-{uid}-config-limit": "9"})
    page = response.content.decode()
    assert response.status_code == 200
    assert f'name="b-{uid}-config-allow_cidrs"' in page
    assert 'value="9"' in field_block(page, f"b-{uid}-config-limit")  # carried over, typed value kept
    assert f'name="b-{uid}-shown" value="1.1.0"' in page
    assert "Switched from 1.0.0 to 1.1.0" in page or "Upgraded from 1.0.0 to 1.1.0" in page


def test_going_back_to_a_version_without_a_setting_says_so(editor_client: Any, pinned_rate_limit: str) -> None:
    uid = pinned_rate_limit
    html = press(editor_client, editor(editor_client), f"upgrade:{uid}").content.decode()
    html = press(
        editor_client, html, f"show:{uid}", **{f"b-{uid}-version": "1.0.0", f"b-{uid}-config-allow_cidrs": "10.0.0.0/8"}
    ).content.decode()
    assert "“Never limit these networks” ([&quot;10.0.0.0/8&quot;]) is not a setting of 1.0.0" in html


def test_upgrading_shows_the_newer_version_and_revalidates_on_save(
    editor_client: Any, personas: Any, pinned_rate_limit: str
) -> None:
    uid = pinned_rate_limit
    html = editor(editor_client)
    assert "Newer version available: 1.1.0" in html
    html = press(editor_client, html, f"upgrade:{uid}").content.decode()
    assert "Upgraded from 1.0.0 to 1.1.0" in html and "New in 1.1.0: “Never limit these networks”" in html
    assert "Newer version available" not in html
    assert 'value="7"' in field_block(html, f"b-{uid}-config-limit")
    assert current_revision(personas.tenant_a).number == 2  # nothing saved yet

    response = press(editor_client, html, "save", **{f"b-{uid}-config-allow_cidrs": "not-a-network"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "not-a-network" in field_block(page, f"b-{uid}-config-allow_cidrs")
    assert 'class="errorlist"' in field_block(page, f"b-{uid}-config-allow_cidrs")

    response = press(editor_client, page, "save", **{f"b-{uid}-config-allow_cidrs": "10.0.0.0/8"})
    assert response.status_code == 302
    binding = Binding.objects.get(revision=current_revision(personas.tenant_a))
    assert binding.pinned_version.version == "1.1.0" and binding.key.hex == uid
    assert binding.config == {"limit": 7, "window_seconds": 30, "message": "Wait", "allow_cidrs": ["10.0.0.0/8"]}
    event = AuditEvent.objects.get(type="flow.action_updated")
    assert event.before is not None and event.after is not None
    assert (event.before["version"], event.after["version"]) == ("1.0.0", "1.1.0")


# Secrets


@pytest.fixture
def webhook(personas: Any) -> str:
    flow = attach(
        personas.tenant_a,
        POST_LOGIN,
        BindingSpec(
            "webhook-emit", "1.0.0", {"url": "https://hooks.example.com/in", "secret": "s3cret-signing-key-0001"}
        ),
    )
    return Binding.objects.get(revision=flow.current_revision).key.hex


def test_secrets_are_never_rendered_and_kept_when_left_blank(editor_client: Any, personas: Any, webhook: str) -> None:
    uid = webhook
    html = editor(editor_client)
    assert "s3cret-signing-key-0001" not in html
    assert "Stored — leave blank to keep." in field_block(html, f"b-{uid}-config-secret")

    # A failed save does not echo a newly typed secret either.
    response = press(
        editor_client,
        html,
        "save",
        **{f"b-{uid}-config-secret": "brand-new-secret-0002", f"b-{uid}-config-url": "http://not-https.example.com"},
    )
    assert response.status_code == 422
    assert "brand-new-secret-0002" not in response.content.decode()

    response = press(editor_client, html, "save", **{f"b-{uid}-config-url": "https://hooks.example.com/v2"})
    assert response.status_code == 302
    binding = Binding.objects.get(revision=current_revision(personas.tenant_a))
    assert binding.config["url"] == "https://hooks.example.com/v2"
    assert stored_secrets(binding) == {"secret": "s3cret-signing-key-0001"}
    assert "s3cret-signing-key-0001" not in editor(editor_client)


def test_service_errors_are_shown_next_to_their_field(editor_client: Any, webhook: str) -> None:
    uid = webhook
    # Passes the form's own checks (an https URL) but the service refuses a loopback address.
    response = press(editor_client, editor(editor_client), "save", **{f"b-{uid}-config-url": "https://127.0.0.1/hook"})
    assert response.status_code == 422
    page = response.content.decode()
    url_field = field_block(page, f"b-{uid}-config-url")
    assert 'class="errorlist"' in url_field and 'value="https://127.0.0.1/hook"' in url_field
    assert 'id="editor-errors"' in page


def test_a_bad_timeout_is_an_error_next_to_it(editor_client: Any, pinned_rate_limit: str) -> None:
    uid = pinned_rate_limit
    response = press(editor_client, editor(editor_client), "save", **{f"b-{uid}-timeout_ms": "9000"})
    assert response.status_code == 422
    page = response.content.decode()
    assert f'id="b-{uid}-timeout_ms-errors"' in page and "from 50 to 5000" in page and 'value="9000"' in page


# Concurrency


def test_a_stale_save_answers_409_with_what_changed_and_keeps_the_unsaved_state(
    editor_client: Any, personas: Any, pinned_rate_limit: str
) -> None:
    html = editor(editor_client)  # editing r2
    html, mine = add(editor_client, html, POST_AUTH, "block-by-risk-score")

    # Meanwhile an admin changes the flow: r3 attaches an action and changes the rate limit.
    flow = flow_of(personas.tenant_a)
    save_flow_slots(
        flow,
        {
            PRE_CREDENTIAL: [
                BindingSpec(
                    "rate-limit-by-ip",
                    "1.1.0",
                    {"limit": 3, "window_seconds": 30, "message": "Wait"},
                    key=Binding.objects.get(revision=flow.current_revision).key,
                ),
            ],
            POST_LOGIN: [
                BindingSpec("redirect-by-group", "1.0.0", {"rules": [{"group": "a", "url": "https://x.example"}]})
            ],
        },
        expected_revision=2,
        acting=acting_as(personas.admin),
    )

    response = press(editor_client, html, "save", **{f"b-{mine}-config-threshold": "85"})
    assert response.status_code == 409
    page = response.content.decode()
    assert "a-admin" in page and "saved revision 3" in page and "you were editing revision 2" in page
    assert "attached</span> Redirect by group" in page
    assert "updated</span> Rate limit by IP" in page and "version 1.0.0 → 1.1.0" in page and "limit: 7 → 3" in page
    assert 'value="85"' in field_block(page, f"b-{mine}-config-threshold")  # the unsaved state is intact
    assert 'name="expected_revision" value="2"' in page
    assert current_revision(personas.tenant_a).number == 3

    # Saving again is refused again: nothing is overwritten without a choice.
    assert press(editor_client, page, "save").status_code == 409
    # The two changes touch different bindings: the merge is shown, then saved.
    merged = press(editor_client, page, "merge")
    assert merged.status_code == 200 and "Merged your changes with r3" in merged.content.decode()
    assert press(editor_client, merged.content.decode(), "save").status_code == 302
    current = current_revision(personas.tenant_a)
    assert current.number == 4
    assert sorted(b.action.slug for b in current.bindings.all()) == [
        "block-by-risk-score",
        "rate-limit-by-ip",
        "redirect-by-group",
    ]


# Permissions


def test_viewers_see_the_editor_read_only_and_cannot_save(client: Any, personas: Any, pinned_rate_limit: str) -> None:
    client.force_login(personas.viewer)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<fieldset class="editor-fields" disabled>' in html
    assert 'id="save-button"' not in html and 'name="op" value="add:' not in html and "hx-post" not in html
    assert "Rate limit by IP" in html
    data = form_values(html) | {"op": "save", "expected_revision": "2"}
    assert client.post(URL, data).status_code == 403
    assert client.post(URL, {"op": f"add:{PRE_CREDENTIAL}", "expected_revision": "2"}).status_code == 403
    assert client.post(TRY_URL, {"try-trigger": POST_AUTH}).status_code == 403
    assert current_revision(personas.tenant_a).number == 2


def test_other_tenants_get_404(client: Any, personas: Any) -> None:
    client.force_login(personas.outsider)
    assert client.get(URL).status_code == 404
    assert client.post(URL, {"op": "save", "expected_revision": "1"}).status_code == 404
    assert client.post(TRY_URL).status_code == 404


def test_only_actions_the_operator_can_see_are_offered(client: Any, personas: Any) -> None:
    action = Action.objects.get(tenant=personas.tenant_a, slug="block-by-risk-score")
    for role_group in TenantRoleGroup.objects.filter(tenant=personas.tenant_a):
        remove_perm("actions_app.view_action", role_group.group, action)
    client.force_login(personas.editor)
    html = client.get(URL).content.decode()
    assert 'value="block-by-risk-score"' not in html
    assert 'value="demand-mfa-by-risk-score"' in html


# Audit


def test_saves_record_attached_updated_and_detached_events(
    editor_client: Any, personas: Any, pinned_rate_limit: str
) -> None:
    uid = pinned_rate_limit
    html = editor(editor_client)
    assert press(editor_client, html, "save", **{f"b-{uid}-config-limit": "8"}).status_code == 302
    updated = AuditEvent.objects.filter(type="flow.action_updated").latest("id")
    assert updated.before is not None and updated.after is not None
    assert (updated.before["config"]["limit"], updated.after["config"]["limit"]) == (7, 8)
    html = press(editor_client, editor(editor_client), f"remove:{uid}").content.decode()
    assert press(editor_client, html, "save").status_code == 302
    detached = AuditEvent.objects.get(type="flow.action_detached")
    assert (detached.action_slug, detached.flow_revision, detached.actor_id) == (
        "rate-limit-by-ip",
        4,
        str(personas.editor.pk),
    )
    assert not Binding.objects.filter(revision=current_revision(personas.tenant_a)).exists()


def test_a_save_can_carry_a_note_that_the_revision_history_shows(
    editor_client: Any, personas: Any, pinned_rate_limit: str
) -> None:
    uid = pinned_rate_limit
    too_long = "x" * 201
    refused = press(
        editor_client, editor(editor_client), "save", revision_comment=too_long, **{f"b-{uid}-config-limit": "9"}
    )
    assert refused.status_code == 422
    page = refused.content.decode()
    assert "Keep the note within 200 characters (it has 201)." in page
    assert f'value="{too_long}"' in page and 'value="9"' in field_block(page, f"b-{uid}-config-limit")
    nul = press(editor_client, page, "save", revision_comment="a\x00b")
    assert nul.status_code == 422 and "The note must not contain a NUL" in nul.content.decode()
    note = "Raise the limit for the campaign"
    assert press(editor_client, page, "save", revision_comment=note).status_code == 302
    assert current_revision(personas.tenant_a).comment == note
    assert note in editor_client.get("/t/acme/flows/login/revisions/").content.decode()


# htmx


def test_htmx_requests_get_the_editor_region_and_a_client_redirect(editor_client: Any, personas: Any) -> None:
    html = editor(editor_client)
    data = form_values(html) | {"op": f"add:{POST_AUTH}", f"add-{POST_AUTH}": "block-by-risk-score"}
    response = editor_client.post(URL, data, headers=HTMX)
    fragment = response.content.decode()
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<div id="flow-editor"') and "<html" not in fragment
    uid = uids(fragment, POST_AUTH)[0]
    data = form_values(f'<form id="flow-editor-form">{fragment}</form>') | {"op": "save"}
    data[f"b-{uid}-config-threshold"] = "x"
    refused = editor_client.post(URL, data, headers=HTMX)
    assert refused.status_code == 200 and 'id="editor-errors"' in refused.content.decode()
    data[f"b-{uid}-config-threshold"] = "60"
    saved = editor_client.post(URL, data, headers=HTMX)
    assert saved["HX-Redirect"] == URL
    assert current_revision(personas.tenant_a).number == 2


# Try it


@pytest.fixture
def risk_gate(personas: Any) -> None:
    attach(
        personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50, "message": "Risky"})
    )


TRY = {
    "try-trigger": POST_AUTH,
    "try-email": "jane@example.com",
    "try-groups": "admins, staff",
    "try-ip": "203.0.113.9",
    "try-risk_score": "90",
    "try-transaction_id": "",
}


def test_try_it_runs_the_saved_revision_and_shows_the_trace(editor_client: Any, personas: Any, risk_gate: None) -> None:
    response = editor_client.post(TRY_URL, TRY, headers={"HX-Request": "true", "HX-Target": "try-panel"})
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section id="try-panel"')
    assert "Outcome: block" in fragment and "Risky" in fragment
    trace = fragment[fragment.index('id="try-trace"') :]
    assert "<code>block-by-risk-score</code>" in trace and "<code>1.0.0</code>" in trace and ">block<" in trace
    settle_tenant(personas.tenant_a)
    execution = ActionExecution.objects.get()
    # The run's transaction links to its trace, which gives the reason of the block.
    trace_url = f"/t/acme/flows/login/transactions/{execution.transaction_id}/"
    assert f'href="{trace_url}"' in fragment
    assert "Risky" in editor_client.get(trace_url).content.decode()
    assert (execution.outcome, execution.revision_number) == ("block", 2)
    event = AuditEvent.objects.get(type="flow.action_executed")
    assert event.actor_id == str(personas.editor.pk)

    low = editor_client.post(TRY_URL, {**TRY, "try-risk_score": "10"}, headers={"HX-Request": "true"})
    assert "Outcome: continue" in low.content.decode()


def test_try_it_without_javascript_keeps_the_unsaved_editor_state(editor_client: Any, risk_gate: None) -> None:
    html, uid = add(editor_client, editor(editor_client), PRE_CREDENTIAL, "rate-limit-by-ip")
    response = press(editor_client, html, None, url=TRY_URL, **{f"b-{uid}-config-limit": "33"}, **TRY)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Outcome: block" in page
    assert uids(page, PRE_CREDENTIAL) == [uid] and 'value="33"' in field_block(page, f"b-{uid}-config-limit")


def test_try_it_explains_bad_input(editor_client: Any, risk_gate: None) -> None:
    response = editor_client.post(TRY_URL, {**TRY, "try-risk_score": "140", "try-ip": "nowhere"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "The risk score must be a number from 0 to 100" in page and "valid IPv4 or IPv6" in page
    broken = editor_client.post(TRY_URL, {**TRY, "try-app_metadata": '{"plan": "pro",\n}'})
    assert broken.status_code == 422
    assert "Not valid JSON at line 2, column 1" in field_block(broken.content.decode(), "try-app_metadata")
    assert "{&quot;plan&quot;: &quot;pro&quot;," in broken.content.decode()  # kept as typed
    listed = editor_client.post(TRY_URL, {**TRY, "try-app_metadata": '["pro"]'})
    assert "Enter a JSON object" in field_block(listed.content.decode(), "try-app_metadata")
    # What Python's json reads but the database cannot store, and nesting too deep to read.
    for text, problem in (
        ('{"seats": NaN}', "NaN is not a JSON value"),
        ('{"plan": "a\\u0000b"}', "must not contain a NUL"),
        ("[" * 3000, "nested too deeply"),
    ):
        refused = editor_client.post(TRY_URL, {**TRY, "try-app_metadata": text})
        assert refused.status_code == 422
        assert problem in field_block(refused.content.decode(), "try-app_metadata")
    assert not ActionExecution.objects.exists()


def test_try_it_passes_app_metadata_to_the_actions(editor_client: Any, personas: Any) -> None:
    claim = BindingSpec("decorate-token", "1.0.0", {"claim": "https://acme.example/plan", "from": "app_metadata.plan"})
    attach(personas.tenant_a, "login.pre-token", claim)
    response = editor_client.post(
        TRY_URL,
        {**TRY, "try-trigger": "login.pre-token", "try-app_metadata": '{"plan": "enterprise"}'},
        headers={"HX-Request": "true", "HX-Target": "try-panel"},
    )
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "Outcome: continue" in fragment
    assert "https://acme.example/plan" in fragment and "enterprise" in fragment
    # The form echoes what was typed, so the page alone cannot show the action received it.
    assert response.context["try_run"].outcome["claims"] == {"https://acme.example/plan": "enterprise"}


def test_publishing_a_newer_version_changes_no_binding_but_is_offered(editor_client: Any, personas: Any) -> None:
    gate = custom_action(personas.tenant_a, "risk-gate", "return { kind: 'continue' };", [POST_AUTH])
    attach(personas.tenant_a, POST_AUTH, BindingSpec("risk-gate", "0.1.0"))
    draft = VersionDraft(
        "export async function execute(input: ActionInput): Promise<ActionResult> { return { kind: 'continue' }; }\n",
        {"type": "object", "properties": {}},
        [POST_AUTH],
    )
    newer = save_action_version(gate, draft, acting=SYSTEM).version
    assert "Newer version available" not in editor(editor_client)  # a draft is not offered
    publish_version(newer, acting=SYSTEM)
    html = editor(editor_client)
    assert f"Newer version available: {newer.version}" in html
    assert Binding.objects.get(revision=current_revision(personas.tenant_a)).pinned_version.version == "0.1.0"


def test_saving_right_after_choosing_another_version_shows_its_form_first(
    editor_client: Any, personas: Any, pinned_rate_limit: str
) -> None:
    uid = pinned_rate_limit
    response = press(editor_client, editor(editor_client), "save", **{f"b-{uid}-version": "1.1.0"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "You chose 1.1.0; check its config below and save again." in page
    assert f'name="b-{uid}-config-allow_cidrs"' in page and f'name="b-{uid}-shown" value="1.1.0"' in page
    assert current_revision(personas.tenant_a).number == 2
    assert press(editor_client, page, "save").status_code == 302
    assert Binding.objects.get(revision=current_revision(personas.tenant_a)).pinned_version.version == "1.1.0"


def test_the_editor_page_makes_a_fixed_number_of_queries(
    editor_client: Any, personas: Any, django_assert_max_num_queries: Any
) -> None:
    limits = {"limit": 5, "window_seconds": 60}
    attach(personas.tenant_a, PRE_CREDENTIAL, *[BindingSpec("rate-limit-by-ip", "1.0.0", limits) for _ in range(5)])
    hook = {"url": "https://hooks.example.com/in", "secret": "s3cret-signing-key-0001"}
    attach(personas.tenant_a, POST_LOGIN, *[BindingSpec("webhook-emit", "1.0.0", hook) for _ in range(5)])
    with django_assert_max_num_queries(12):
        assert editor_client.get(URL).status_code == 200


def test_after_a_stale_save_the_header_and_try_it_name_the_running_revision(
    editor_client: Any, personas: Any, pinned_rate_limit: str
) -> None:
    html = editor(editor_client)  # editing r2
    assert 'id="try-revision">r2<' in html
    flow = flow_of(personas.tenant_a)
    save_flow_slots(flow, {POST_LOGIN: []}, expected_revision=2, acting=acting_as(personas.admin))
    data: dict[str, Any] = form_values(html)
    data["op"] = "save"
    response = editor_client.post(URL, data, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200 and "saved revision 3" in page  # htmx swaps only 2xx answers
    # htmx swaps the editor, and these two out of band, so nothing on the page still says r2.
    assert re.search(
        r'<p class="meta" id="flow-revision-meta" hx-swap-oob="true">.*running revision <code>r3</code>', page
    )
    assert '<code id="try-revision" hx-swap-oob="true">r3</code>' in page
    # Without htmx the whole page comes back with r3 throughout, and no second copy of either.
    full = press(editor_client, html, "save").content.decode()
    assert full.count('id="flow-revision-meta"') == 1 and full.count('id="try-revision"') == 1
    assert 'id="try-revision">r3<' in full
