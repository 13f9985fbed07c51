""" "Attach to a flow…" from a template's page and a custom action's page: any compatible slot of a
flow the operator may edit, a published version, its config form; saved as a new revision of the
flow, refused when the flow moved on since the page was opened."""

from __future__ import annotations

import re
from typing import Any

import pytest

from actions_app.versioning import VersionDraft, create_custom_action
from audit_app.models import AuditEvent
from flows_app.bindings import binding_config
from flows_app.models import Binding, Flow
from flows_app.services import BindingSpec
from tenants.permissions import grant_object_to_operator
from tests.factories import make_operator, web
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of

URL = "/t/acme/actions/rate-limit-by-ip/attach/"
PRE = "login.pre-credential-check"
HOOK = {"url": "https://hooks.example.com/in", "secret": "signing-secret-0123456789"}


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]* name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name}"
    return re.findall(r'<option value="([^"]*)"', select.group(1))


def bindings_of(tenant: Any, slug: str, trigger: str) -> list[Binding]:
    revision = flow_of(tenant, slug).current_revision
    return list(Binding.objects.filter(revision=revision, trigger=trigger).order_by("position"))


def posted(**fields: str) -> dict[str, str]:
    values = {
        "version": "1.1.0",
        "target": f"login:{PRE}",
        "on_error": "continue",
        "revision-login": "1",
        "config-limit": "7",
        "config-window_seconds": "60",
        "config-message": "Slow down",
    }
    return {**values, **fields}


def test_the_page_offers_only_compatible_slots_and_published_versions(personas: Any) -> None:
    html = web(personas.editor).get(URL).content.decode()
    assert "Attach Rate limit by IP to a flow" in html
    assert options(html, "version") == ["1.1.0", "1.0.0"]  # newest first, the default
    assert options(html, "target") == [
        "",  # "Choose a flow and slot…": nothing is chosen for the operator
        f"login:{PRE}",
        "password-reset:password-reset.requested",
        "registration:registration.pre-create",
    ]
    assert "login.post-auth" not in options(html, "target").__str__()
    assert 'name="config-limit"' in html and 'name="config-allow_cidrs' in html  # 1.1.0's schema
    older = web(personas.editor).get(URL, {"version": "1.0.0"}).content.decode()
    assert 'name="config-limit"' in older and "allow_cidrs" not in older


def test_an_editor_attaches_a_template_as_a_new_revision_after_what_is_there(personas: Any) -> None:
    tenant = personas.tenant_a
    attach(tenant, PRE, BindingSpec("webhook-emit", "1.0.0", HOOK))  # r2
    editor = web(personas.editor)
    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    response = editor.post(URL, posted(**{"revision-login": "2"}))
    assert response.status_code == 302 and response["Location"] == "/t/acme/flows/login/"
    page = editor.get(response["Location"]).content.decode()
    assert f"Attached Rate limit by IP 1.1.0 to {PRE} of Login as revision 3." in page
    first, second = bindings_of(tenant, "login", PRE)
    assert binding_config(first) == HOOK  # the binding already there keeps its secret
    assert (second.action.slug, second.pinned_version.version, second.on_error, second.enabled) == (
        "rate-limit-by-ip",
        "1.1.0",
        "continue",
        True,
    )
    assert second.config == {"limit": 7, "window_seconds": 60, "message": "Slow down", "allow_cidrs": []}
    assert flow_of(tenant).current_revision.created_by == personas.editor  # type: ignore[union-attr]
    events = AuditEvent.objects.filter(pk__gt=last)
    assert [(e.type, e.action_slug, e.flow_revision, e.actor_name) for e in events] == [
        ("flow.action_attached", "rate-limit-by-ip", 3, "a-editor")
    ]


def test_a_flow_saved_meanwhile_is_said_and_what_was_typed_is_kept(personas: Any) -> None:
    editor = web(personas.editor)
    attach(personas.tenant_a, PRE, BindingSpec("webhook-emit", "1.0.0", HOOK))  # someone else: r2
    response = editor.post(URL, posted(**{"config-limit": "42"}))
    assert response.status_code == 409
    html = response.content.decode()
    assert "Login was saved since you opened this page (now r2" in html
    assert "Nothing was attached; what you typed is kept below." in html
    assert "Fix the configuration marked below" not in html
    assert 'value="42"' in html and 'value="Slow down"' in html
    assert re.search(rf'value="login:{PRE}"[^>]*selected', html)
    assert 'name="revision-login" value="2"' in html  # attaching again now goes onto r2
    assert len(bindings_of(personas.tenant_a, "login", PRE)) == 1
    assert editor.post(URL, posted(**{"revision-login": "2"})).status_code == 302


@pytest.mark.parametrize(
    ("fields", "label", "message"),
    [
        ({"config-limit": "0"}, "Requests allowed per window", ""),
        ({"target": "login:login.post-auth"}, "Flow and slot", "Choose one of the flows and slots offered"),
        ({"target": "nope:login.post-auth"}, "Flow and slot", "Choose one of the flows and slots offered"),
        ({"target": ""}, "Flow and slot", "This field is required"),
        ({"on_error": "explode"}, "On error", "Select a valid choice"),
        ({"version": "9.9.9"}, "Version", "Select a valid choice"),
    ],
)
def test_bad_input_is_named_and_what_was_typed_is_kept(
    personas: Any, fields: dict[str, str], label: str, message: str
) -> None:
    response = web(personas.editor).post(URL, posted(**{"config-window_seconds": "61", **fields}))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was attached" in html
    assert label in html and message in html
    assert 'value="61"' in html
    assert flow_of(personas.tenant_a).current_revision.number == 1  # type: ignore[union-attr]


def test_a_custom_actions_draft_cannot_be_attached_until_published(personas: Any) -> None:
    tenant = personas.tenant_a
    create_custom_action(
        tenant,
        name="Draft only",
        slug="draft-only",
        draft=VersionDraft(
            "export async function execute(input: ActionInput): Promise<ActionResult> { return { kind: 'continue' }; }",
            {"type": "object", "properties": {}},
            ["login.post-auth"],
        ),
        acting=SYSTEM,
    )
    editor = web(personas.editor)
    html = editor.get("/t/acme/actions/draft-only/attach/").content.decode()
    assert "has no published version yet" in html and 'name="target"' not in html
    response = editor.post(
        "/t/acme/actions/draft-only/attach/", {"version": "0.1.0", "target": "login:login.post-auth"}
    )
    assert response.status_code == 200 and "has no published version yet" in response.content.decode()


def test_a_custom_action_is_attached_from_its_page(personas: Any) -> None:
    custom_action(personas.tenant_a, "tag-user", "return { kind: 'continue' };", ["login.post-auth", "login.pre-token"])
    editor = web(personas.editor)
    page = editor.get("/t/acme/actions/tag-user/").content.decode()
    assert 'href="/t/acme/actions/tag-user/attach/">Attach to a flow…</a>' in page
    html = editor.get("/t/acme/actions/tag-user/attach/").content.decode()
    assert options(html, "target") == ["", "login:login.post-auth", "login:login.pre-token"]
    response = editor.post(
        "/t/acme/actions/tag-user/attach/",
        {"version": "0.1.0", "target": "login:login.pre-token", "on_error": "block", "revision-login": "1"},
    )
    assert response.status_code == 302
    (binding,) = bindings_of(personas.tenant_a, "login", "login.pre-token")
    assert (binding.action.slug, binding.on_error) == ("tag-user", "block")


def test_the_template_page_links_to_attach_for_editors_only(personas: Any) -> None:
    assert (
        f'href="{URL}">Attach to a flow…</a>'
        in web(personas.editor).get("/t/acme/actions/rate-limit-by-ip/").content.decode()
    )
    assert URL not in web(personas.viewer).get("/t/acme/actions/rate-limit-by-ip/").content.decode()


def test_viewers_get_403_and_outsiders_404(personas: Any) -> None:
    viewer = web(personas.viewer)
    assert viewer.get(URL).status_code == 403
    assert viewer.post(URL, posted()).status_code == 403
    outsider = web(personas.outsider)
    assert outsider.get(URL).status_code == 404
    assert outsider.post(URL, posted()).status_code == 404
    assert web(personas.editor).get("/t/acme/actions/no-such-action/attach/").status_code == 404
    assert flow_of(personas.tenant_a).current_revision.number == 1  # type: ignore[union-attr]


def test_a_contractor_sees_only_the_flows_they_may_edit_and_a_message_when_none_fits(personas: Any) -> None:
    tenant = personas.tenant_a
    contractor = make_operator("contractor")
    action = custom_action(tenant, "post-auth-only", "return { kind: 'continue' };", ["login.post-auth"])
    grant_object_to_operator(contractor, "view_action", action)
    registration = Flow.objects.get(tenant=tenant, slug="registration")
    grant_object_to_operator(contractor, "view_flow", registration)
    grant_object_to_operator(contractor, "change_flow", registration)
    html = web(contractor).get("/t/acme/actions/post-auth-only/attach/").content.decode()
    assert "No flow you can edit has a slot where post-auth-only 0.1.0 can run" in html
    assert "<code>login.post-auth</code>" in html and 'name="target"' not in html
    response = web(contractor).post(
        "/t/acme/actions/post-auth-only/attach/",
        {"version": "0.1.0", "target": "login:login.post-auth", "on_error": "block", "revision-login": "1"},
    )
    assert response.status_code == 200
    assert flow_of(tenant).current_revision.number == 1  # type: ignore[union-attr]


def test_an_action_already_in_the_slot_that_fails_todays_checks_is_named(personas: Any) -> None:
    tenant = personas.tenant_a
    attach(tenant, PRE, BindingSpec("webhook-emit", "1.0.0", HOOK))  # r2
    # Saved before the SSRF check refused loopback hosts: today's validator refuses it.
    Binding.objects.filter(revision=flow_of(tenant).current_revision).update(config={"url": "https://127.0.0.1/x"})
    response = web(personas.editor).post(URL, posted(**{"revision-login": "2"}))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Action #1 already in {PRE}:" in html and "Fix it in the flow editor." in html
    assert "Nothing was attached" in html and 'value="Slow down"' in html
    assert flow_of(tenant).current_revision.number == 2  # type: ignore[union-attr]


def test_adding_a_config_row_shows_the_form_again_without_refusing(personas: Any) -> None:
    url = "/t/acme/actions/redirect-by-group/attach/"
    fields = {"version": "1.0.0", "target": "login:login.post-auth", "on_error": "block", "revision-login": "1"}
    row = {
        "config-rules-row-count": "1",
        "config-rules.0.group": "staff",
        "config-rules.0.url": "https://in.example.com/",
    }
    response = web(personas.editor).post(url, {**fields, **row, "config-rules-add-row": "1"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was attached" not in html
    assert 'value="staff"' in html and 'name="config-rules.1.group"' in html
    assert flow_of(personas.tenant_a).current_revision.number == 1  # type: ignore[union-attr]
    assert web(personas.editor).post(url, {**fields, **row}).status_code == 302
