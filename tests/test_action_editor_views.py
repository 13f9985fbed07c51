from __future__ import annotations

import json
import re
from typing import Any

import pytest
from guardian.shortcuts import remove_perm

from actions_app.models import Action
from actions_app.starters import STARTERS
from actions_app.versioning import VersionDraft, publish_version, save_action_version
from flows_app.services import BindingSpec, create_flow, set_flow_enabled
from tenants.acting import Acting
from tenants.models import TenantRoleGroup
from tests.factories import BAD, GOOD, create
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of, run

NEW = "/t/acme/actions/new/"
PRE_CREDENTIAL = "login.pre-credential-check"


def editor_post(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Block risky",
        "slug": "",
        "source": GOOD,
        "compatible_triggers": ["login.post-auth"],
        "config_schema": json.dumps({"type": "object", "properties": {"threshold": {"type": "integer"}}}),
        "bump": "patch",
        "version": "",
        "base_version": "",
    }
    data.update(overrides)
    return data


def test_the_starter_picker_offers_empty_and_four_patterns(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    html = client.get(NEW).content.decode()
    for starter in STARTERS:
        assert f"?starter={starter.key}" in html
    assert len(STARTERS) >= 5


@pytest.mark.parametrize("starter", [s.key for s in STARTERS])
def test_every_starter_opens_the_editor_and_compiles(client: Any, personas: Any, starter: str) -> None:
    client.force_login(personas.editor)
    response = client.get(NEW, {"starter": starter})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="monaco-container"' in html and 'name="source"' in html
    chosen = next(s for s in STARTERS if s.key == starter)
    response = client.post(
        NEW,
        editor_post(
            name=f"From {starter}",
            source=chosen.source,
            config_schema=json.dumps(chosen.config_schema),
            compatible_triggers=chosen.compatible_triggers,
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Action.objects.get(tenant=personas.tenant_a, slug=f"from-{starter}").versions.get().version == "0.1.0"


def test_viewers_cannot_create_actions(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, editor_post()).status_code == 403
    assert not Action.objects.filter(kind="custom").exists()


def test_creating_derives_the_slug_and_opens_the_editor(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post(NEW, editor_post())
    assert response["Location"] == "/t/acme/actions/block-risky/"
    page = client.get(response["Location"]).content.decode()
    assert "Saved block-risky 0.1.0 as a draft." in page
    assert "Version history" in page


def test_a_type_error_refuses_the_save_and_keeps_everything_typed(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post(NEW, editor_post(source=BAD, name="Keeps typing", slug="keeps-typing"))
    assert response.status_code == 422
    html = response.content.decode()
    assert "Nothing was saved" in html
    assert 'data-line="2"' in html and "TS2820" in html
    assert "blok" in html  # the source is still in the textarea
    assert 'value="Keeps typing"' in html and 'value="keeps-typing"' in html
    assert "Save anyway" in html
    assert not Action.objects.filter(slug="keeps-typing").exists()
    response = client.post(NEW, editor_post(source=BAD, name="Keeps typing", save_anyway="on"))
    assert response.status_code == 302
    version = Action.objects.get(slug="keeps-typing").versions.get()
    assert version.saved_with_errors


def test_bad_json_in_the_schema_is_named_with_line_and_column(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post(NEW, editor_post(config_schema='{"type": "object",\n  "properties": }'))
    assert response.status_code == 422
    html = response.content.decode()
    assert "Not valid JSON at line 2, column" in html
    assert "&quot;properties&quot;: }" in html
    schema = '{"type": "object", "properties": {"n": {"type": "number", "default": NaN}}}'
    response = client.post(NEW, editor_post(config_schema=schema))
    assert response.status_code == 422
    assert "NaN is not a JSON value" in response.content.decode()
    assert not Action.objects.filter(name="Block risky").exists()


def test_saving_a_new_version_and_the_conflict_page(client: Any, personas: Any) -> None:
    create(personas)
    client.force_login(personas.editor)
    url = "/t/acme/actions/my-action/save/"
    assert client.post(url, editor_post(source=GOOD + "// a", base_version="0.1.0")).status_code == 302
    response = client.post(url, editor_post(source=GOOD + "// mine", base_version="0.1.0"))
    assert response.status_code == 409
    html = response.content.decode()
    assert "Someone saved 0.1.1 after you opened 0.1.0" in html
    assert "// a" in html and "// mine" in html
    unchanged = client.post(url, editor_post(source=GOOD + "// a", base_version="0.1.1"), follow=True)
    assert "No changes since 0.1.1" in unchanged.content.decode()


def test_viewers_see_the_editor_read_only_and_cannot_save(client: Any, personas: Any) -> None:
    create(personas)
    client.force_login(personas.viewer)
    html = client.get("/t/acme/actions/my-action/").content.decode()
    assert 'data-read-only="true"' in html and "Save new version" not in html
    response = client.post("/t/acme/actions/my-action/save/", editor_post(source=GOOD + "// v"))
    assert response.status_code == 403


def test_publish_needs_admin_and_shows_in_history(client: Any, personas: Any) -> None:
    create(personas)
    client.force_login(personas.editor)
    assert client.post("/t/acme/actions/my-action/versions/0.1.0/publish/").status_code == 403
    client.force_login(personas.admin)
    response = client.post("/t/acme/actions/my-action/versions/0.1.0/publish/", follow=True)
    assert "Published my-action 0.1.0" in response.content.decode()
    assert Action.objects.get(slug="my-action").versions.get().status == "published"


def test_restore_as_new_version_and_diff(client: Any, personas: Any) -> None:
    from actions_app.versioning import save_action_version
    from tests.factories import draft

    action = create(personas).action
    save_action_version(action, draft(GOOD + "// second"), acting=Acting.platform("tests"))
    client.force_login(personas.editor)
    client.post("/t/acme/actions/my-action/versions/0.1.0/restore/")
    latest = action.versions.order_by("-major", "-minor", "-patch").first()
    assert latest is not None and latest.version == "0.1.2" and latest.source == GOOD
    html = client.get("/t/acme/actions/my-action/diff/", {"from": "0.1.0", "to": "0.1.1"}).content.decode()
    assert "// second" in html and "diff-add" in html
    assert client.get("/t/acme/actions/my-action/diff/", {"from": "9.9.9", "to": "0.1.1"}).status_code == 404


def test_schema_preview_shows_the_form_or_the_problems(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    url = "/t/acme/actions/schema-preview/"
    schema = {"type": "object", "properties": {"threshold": {"type": "integer", "title": "Risk threshold"}}}
    html = client.post(url, {"config_schema": json.dumps(schema)}).content.decode()
    assert "Risk threshold" in html
    html = client.post(url, {"config_schema": json.dumps({"type": "object", "properties": {"x": {"anyOf": []}}})})
    assert "anyOf" in html.content.decode()
    assert "Not valid JSON" in client.post(url, {"config_schema": "{"}).content.decode()


def test_sdk_types_follow_the_schema(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    schema = {"type": "object", "properties": {"threshold": {"type": "integer"}}, "required": ["threshold"]}
    dts = client.post("/t/acme/actions/sdk-types/", {"config_schema": json.dumps(schema)}).content.decode()
    assert "threshold: number" in dts and "interface ActionInput" in dts


def test_the_harness_runs_the_unsaved_draft_with_config_and_logs(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    source = """export async function execute(input: ActionInput): Promise<ActionResult> {
  console.log("score", input.context.risk.score, "threshold", input.context.config.threshold);
  if (input.context.risk.score > (input.context.config.threshold as number)) {
    return { kind: "block", reason: "too risky" };
  }
  return { kind: "continue" };
}
"""
    sample = client.get("/t/acme/actions/sample-input/", {"trigger": "login.post-auth"}).json()
    sample["context"]["risk"]["score"] = 80
    data = editor_post(source=source, harness_input=json.dumps(sample), harness_target="draft")
    data["test-config-threshold"] = "50"
    response = client.post("/t/acme/actions/new/test/", data, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="harness"')
    assert "too risky" in html and "score 80 threshold 50" in html
    # bad JSON input is named, nothing runs
    data["harness_input"] = '{"trigger": "login.post-auth",'
    html = client.post("/t/acme/actions/new/test/", data, headers={"HX-Request": "true"}).content.decode()
    assert "Not valid JSON at line 1" in html and "too risky" not in html


THROWS_ON_LINE_6 = """// Where the action fails, in the lines and columns of this text.
interface Plan {
  name: string;
}
export async function execute(input: ActionInput): Promise<ActionResult> {
  const plan: Plan = { name: String(input.context.risk.score) };  throw new Error("no plan " + plan.name);
}
"""


def test_the_harness_says_where_an_exception_came_from_in_the_typescript(client: Any, personas: Any) -> None:
    """The sandbox runs tsc's JavaScript (its preamble added, the interface and annotations gone,
    re-indented); the place it reports is mapped back to the operator's text."""
    client.force_login(personas.editor)
    sample = client.get("/t/acme/actions/sample-input/", {"trigger": "login.post-auth"}).json()
    data = editor_post(source=THROWS_ON_LINE_6, harness_input=json.dumps(sample), harness_target="draft")
    html = client.post("/t/acme/actions/new/test/", data, headers={"HX-Request": "true"}).content.decode()
    column = THROWS_ON_LINE_6.splitlines()[5].index("new Error") + 1
    assert f"Error: no plan {sample['context']['risk']['score']} (line 6, column {column})" in html


def test_a_flow_run_records_where_an_exception_came_from_in_the_typescript(personas: Any) -> None:
    tenant = personas.tenant_a
    source = "type Plan = { name: string };\nconst plan: Plan = { name: 'x' };\nthrow new Error('boom ' + plan.name);"
    custom_action(tenant, "thrower", source, ["login.post-auth"])
    attach(tenant, "login.post-auth", BindingSpec("thrower", "0.1.0", on_error="continue"))
    result = run(tenant, "login.post-auth")
    # custom_action puts the body after the signature line: the throw is on line 4, column 7.
    assert result.executions[0].error is not None
    assert result.executions[0].error["message"] == "Uncaught Error: boom x (line 4, column 7)"


def test_a_version_without_a_source_map_says_its_place_is_in_the_javascript(personas: Any) -> None:
    """Versions saved before maps were kept cannot be mapped; the place must not pass for theirs."""
    tenant = personas.tenant_a
    action = custom_action(tenant, "old-thrower", "throw new Error('old');", ["login.post-auth"])
    action.versions.update(source_map="")
    attach(tenant, "login.post-auth", BindingSpec("old-thrower", "0.1.0", on_error="continue"))
    error = run(tenant, "login.post-auth").executions[0].error
    assert error is not None and re.search(r"\(line \d+, column \d+ of the compiled JavaScript\)$", error["message"])


def test_exception_columns_count_utf16_code_units_as_the_editor_does(personas: Any) -> None:
    """Monaco counts columns in UTF-16 code units: an emoji before the throw counts as two."""
    tenant = personas.tenant_a
    custom_action(
        tenant, "emoji-thrower", 'const s: string = "h\u00e9llo\U0001f600"; throw new Error(s);', ["login.post-auth"]
    )
    attach(tenant, "login.post-auth", BindingSpec("emoji-thrower", "0.1.0", on_error="continue"))
    error = run(tenant, "login.post-auth").executions[0].error
    line = 'const s: string = "h\u00e9llo\U0001f600"; throw new Error(s);'
    column = len(line[: line.index("new Error")].encode("utf-16-le")) // 2 + 1
    assert error is not None and error["message"].endswith(f"(line 2, column {column})")


def test_the_api_runs_a_saved_version(client: Any, personas: Any, api_token: Any) -> None:
    from tests.factories import bearer

    create(personas)
    token = api_token("runtime:execute")
    body = {
        "input": {
            "trigger": "login.post-auth",
            "user": {"id": "u", "email": "a@example.com", "groups": []},
            "request": {"ip": "203.0.113.1"},
        },
        "config": {"threshold": 5},
    }
    response = client.post(
        "/api/v1/actions/my-action/versions/0.1.0/test",
        data=json.dumps(body),
        content_type="application/json",
        headers=bearer(token),
    )
    assert response.status_code == 200, response.content
    outcome = response.json()
    assert outcome["result"] == {"kind": "continue"} and outcome["error"] is None
    assert outcome["duration_ms"] > 0
    bad = client.post(
        "/api/v1/actions/my-action/versions/0.1.0/test",
        data=json.dumps({**body, "config": {"threshold": "x"}}),
        content_type="application/json",
        headers=bearer(token),
    )
    assert bad.status_code == 422


def _where_attached(html: str) -> str:
    start = html.index("<h2>Where attached</h2>")
    return html[start : html.index("</section>", start)]


def test_a_custom_actions_page_shows_where_it_is_attached(client: Any, personas: Any) -> None:
    tenant = personas.tenant_a
    action = custom_action(tenant, "tag-staff", "return { kind: 'continue' };", [PRE_CREDENTIAL, "login.post-auth"])
    client.force_login(personas.viewer)
    page = f"/t/acme/actions/{action.slug}/"
    assert "Not attached to any flow slot" in _where_attached(client.get(page).content.decode())

    attach(tenant, "login.post-auth", BindingSpec("tag-staff", "0.1.0"))
    attach(tenant, PRE_CREDENTIAL, BindingSpec("tag-staff", "0.1.0", enabled=False))
    staging = create_flow(tenant, name="Login staging", slug="login-staging", kind="login", acting=SYSTEM)
    attach(tenant, "login.post-auth", BindingSpec("tag-staff", "0.1.0"), flow_slug=staging.slug)
    set_flow_enabled(flow_of(tenant, staging.slug), False, acting=SYSTEM)
    lines = _where_attached(client.get(page).content.decode()).split("<li>")[1:]
    # By flow, then in the order a sign-in reaches the slots.
    assert [re.sub(r"<[^>]+>", "", line).split(" · ")[:2] for line in lines] == [
        ["Login", PRE_CREDENTIAL],
        ["Login", "login.post-auth"],
        ["Login staging", "login.post-auth"],
    ]
    assert 'href="/t/acme/flows/login/"' in lines[0] and 'href="/t/acme/flows/login-staging/"' in lines[2]
    assert "<code>0.1.0</code>" in lines[1]
    assert '<span class="status status-disabled">disabled</span>' in lines[0]  # the binding
    assert "disabled" not in lines[1]
    assert '<span class="status status-disabled">flow disabled</span>' in lines[2]

    assert "newer version" not in "".join(lines)
    # A newer published version is pointed out where an attachment pins an older one.
    draft = VersionDraft(
        "export async function execute(input: ActionInput): Promise<ActionResult> { return { kind: 'continue' }; }\n",
        {"type": "object", "properties": {}},
        [PRE_CREDENTIAL, "login.post-auth"],
    )
    newer = save_action_version(action, draft, acting=SYSTEM).version
    assert "newer version" not in _where_attached(client.get(page).content.decode())  # a draft is not offered
    publish_version(newer, acting=SYSTEM)
    listed = _where_attached(client.get(page).content.decode())
    assert listed.count("newer version 0.1.1 available") == 3
    # Only versions that can run in the binding's slot are offered, as the flow editor does.
    post_auth_only = VersionDraft(draft.source + "// post-auth only\n", draft.config_schema, ["login.post-auth"])
    publish_version(save_action_version(action, post_auth_only, acting=SYSTEM).version, acting=SYSTEM)
    lines = _where_attached(client.get(page).content.decode()).split("<li>")[1:]
    assert ["0.1.1" in lines[0], "0.1.2" in lines[1], "0.1.2" in lines[2]] == [True, True, True]

    # Detaching makes a new revision; the old one's binding is history, not an attachment.
    attach(tenant, "login.post-auth", flow_slug="login")
    attach(tenant, PRE_CREDENTIAL, flow_slug="login")
    lines = _where_attached(client.get(page).content.decode()).split("<li>")[1:]
    assert len(lines) == 1 and "Login staging" in lines[0]

    # A flow the operator may not see is not listed.
    for role_group in TenantRoleGroup.objects.filter(tenant=tenant):
        remove_perm("flows_app.view_flow", role_group.group, flow_of(tenant, staging.slug))
    assert "Not attached to any flow slot" in _where_attached(client.get(page).content.decode())


def test_a_template_actions_page_shows_where_it_is_attached(client: Any, personas: Any) -> None:
    attach(personas.tenant_a, "login.post-auth", BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}))
    attach(
        personas.tenant_b,
        "login.pre-token",
        BindingSpec("decorate-token", "1.0.0", {"claim": "https://b.example/x", "value": "1"}),
    )
    client.force_login(personas.viewer)
    listed = _where_attached(client.get("/t/acme/actions/block-by-risk-score/").content.decode())
    assert "Login" in listed and "<code>login.post-auth</code> · <code>1.0.0</code>" in listed
    # Another tenant's bindings of the same template never show.
    assert "Not attached" in _where_attached(client.get("/t/acme/actions/decorate-token/").content.decode())


@pytest.mark.parametrize("starter", [s for s in STARTERS if s.key != "empty"], ids=lambda s: s.key)
def test_every_starter_saves_first_time_under_its_own_name(client: Any, personas: Any, starter: Any) -> None:
    from actions_app.versioning import derive_slug

    client.force_login(personas.editor)
    derived = derive_slug(starter.name)  # what the editor puts in the slug field as the name is typed
    data = editor_post(
        name=starter.name,
        slug=derived,
        source=starter.source,
        config_schema=json.dumps(starter.config_schema),
        compatible_triggers=starter.compatible_triggers,
    )
    response = client.post(NEW, data, follow=True)
    assert response.redirect_chain, response.content.decode()[:2000]
    action = Action.objects.get(tenant=personas.tenant_a, name=starter.name, kind="custom")
    if Action.objects.filter(tenant=personas.tenant_a, slug=derived, kind="template").exists():
        assert action.slug == f"{derived}-2"
        assert f"Its slug is {derived}-2: {derived} is taken." in response.content.decode()
    else:
        assert action.slug == derived


def test_a_slug_typed_by_hand_that_is_taken_is_refused_not_changed(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post(NEW, editor_post(name="My gate", slug="domain-allowlist"))
    assert response.status_code == 422
    assert "An action with the slug “domain-allowlist” already exists" in response.content.decode()
