"""The flows list (24-hour run statistics, sorting, query count), creating a flow, enable/disable."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions_app.models import Action
from audit_app.models import AuditEvent
from flows_app.models import ActionExecution, Binding, Flow
from flows_app.services import BindingSpec, create_flow, set_flow_enabled
from tenants.acting import Acting
from tests.flow_helpers import attach, flow_of, run

URL = "/t/acme/flows/"
POST_AUTH = "login.post-auth"


def slugs_in(response: Any) -> list[str]:
    return re.findall(r'<code class="slug">([a-z0-9-]+)</code>', response.content.decode())


def row_of(response: Any, slug: str) -> str:
    html = response.content.decode()
    start = html.index(f'<code class="slug">{slug}</code>')
    return html[start : html.index("</tr>", start)]


def execute(flow: Flow, transaction_id: str, outcome: str, *, trigger: str = POST_AUTH, hours_ago: float = 1) -> Any:
    action = Action.objects.get(tenant=flow.tenant, slug="block-by-risk-score")
    return ActionExecution(
        tenant=flow.tenant,
        flow=flow,
        revision_number=1,
        transaction_id=transaction_id,
        trigger=trigger,
        binding_key=uuid.uuid4(),
        action=action,
        action_version="1.0.0",
        position=0,
        outcome=outcome,
        duration_ms=1.0,
        occurred_at=timezone.now() - timedelta(hours=hours_ago),
    )


@pytest.fixture
def executions(personas: Any) -> dict[str, Flow]:
    """login: 8 runs in 24 h, 1 failed (12.5 %); registration: 2 runs, both failed; token-refresh:
    1 run, none failed; password-reset: no runs. Older executions must not count."""
    flows = {f.slug: f for f in Flow.objects.filter(tenant=personas.tenant_a)}
    rows = []
    for n in range(8):
        # two executions in one run; in tx-0 the second one blocks
        rows += [execute(flows["login"], f"tx-{n}", "continue"), execute(flows["login"], f"tx-{n}", "continue")]
    rows[1].outcome = "block"
    # the same transaction's later trigger is a run of its own
    rows.append(execute(flows["login"], "tx-0", "continue", trigger="login.pre-token"))
    # ... which makes 9 runs; take one away again by putting tx-7's runs out of the window
    rows[14].occurred_at = rows[15].occurred_at = timezone.now() - timedelta(hours=25)
    rows += [execute(flows["login"], f"old-{n}", "block", hours_ago=30) for n in range(5)]
    reg = "registration.pre-create"
    rows += [execute(flows["registration"], "r-1", "error", trigger=reg)]
    rows += [execute(flows["registration"], "r-2", "continue", trigger=reg)]
    rows += [execute(flows["registration"], "r-2", "error", trigger=reg)]
    rows += [execute(flows["token-refresh"], "t-1", "continue", trigger="token-refresh.pre-issue")]
    ActionExecution.objects.bulk_create(rows)
    return flows


def test_it_lists_flows_with_their_columns_and_24h_stats(client: Any, personas: Any, executions: Any) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50}))
    client.force_login(personas.viewer)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Name", "Kind", "Actions attached", "Runs (24 h)", "Failure rate (24 h)", "Status"):
        assert header in html
    assert slugs_in(response) == ["login", "password-reset", "registration", "token-refresh"]
    login = row_of(response, "login")
    assert '<td class="num">1</td>' in login  # one binding in the current revision
    assert '<td class="num">8</td>' in login  # 8 runs in the last 24 h
    assert "12.5 %" in login and "1 of 8 runs failed" in login
    assert "status-error" in login  # colour as well as text
    assert "✓ enabled" in login and "status-published" in login
    assert 'href="/t/acme/flows/login/"' in login
    assert 'href="/t/acme/flows/login/runs/"' in login
    assert 'href="/t/acme/flows/login/revisions/"' in login
    registration = row_of(response, "registration")
    assert "100.0 %" in registration and "2 of 2 runs failed" in registration
    token = row_of(response, "token-refresh")
    assert "0.0 %" in token and "0 of 1 run failed" in token
    assert "no runs" in row_of(response, "password-reset")


def test_it_shows_a_disabled_flow_as_text_and_colour(client: Any, personas: Any) -> None:
    set_flow_enabled(flow_of(personas.tenant_a, "registration"), False, acting=Acting.platform("tests"))
    client.force_login(personas.viewer)
    row = row_of(client.get(URL), "registration")
    assert "disabled" in row and "status-disabled" in row


def test_it_sorts_by_failure_rate_and_keeps_the_sort_in_the_url(client: Any, personas: Any, executions: Any) -> None:
    client.force_login(personas.viewer)
    ascending = slugs_in(client.get(URL, {"sort": "failure"}))
    descending = slugs_in(client.get(URL, {"sort": "-failure"}))
    # flows that did not run come last either way
    assert ascending == ["token-refresh", "login", "registration", "password-reset"]
    assert descending == ["registration", "login", "token-refresh", "password-reset"]
    assert slugs_in(client.get(URL, {"sort": "-name"})) == ["token-refresh", "registration", "password-reset", "login"]
    html = client.get(URL, {"sort": "failure"}).content.decode()
    assert 'href="?sort=-failure"' in html  # clicking again flips the direction
    assert client.get(URL, {"sort": "drop table"}).status_code == 200


def test_htmx_requests_get_only_the_results_region(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    html = client.get(URL, {"sort": "-name"}, headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html


def _queries_for(client: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL, {"sort": "-failure"})
    assert response.status_code == 200
    return len(captured)


def test_the_page_runs_a_constant_number_of_queries(
    client: Any, personas: Any, django_assert_max_num_queries: Any
) -> None:
    client.force_login(personas.editor)
    login = flow_of(personas.tenant_a)
    ActionExecution.objects.bulk_create([execute(login, "tx-1", "continue")])
    small = _queries_for(client)
    assert small <= 10
    tenant = personas.tenant_a
    flows = [
        create_flow(tenant, name=f"Flow {n}", slug=f"flow-{n}", kind="login", acting=Acting.platform("tests"))
        for n in range(8)
    ]
    rows = [
        execute(flow, f"tx-{n % 40}", "block" if n % 7 == 0 else "continue", hours_ago=(n % 30))
        for flow in [*flows, login]
        for n in range(40)
    ]
    ActionExecution.objects.bulk_create(rows)
    assert ActionExecution.objects.count() > 300
    with django_assert_max_num_queries(small):
        response = client.get(URL, {"sort": "-failure"})
    assert len(slugs_in(response)) == 12


def test_the_new_flow_link_shows_for_editors_only(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    assert 'href="/t/acme/flows/new/"' in client.get(URL).content.decode()
    client.force_login(personas.viewer)
    assert 'href="/t/acme/flows/new/"' not in client.get(URL).content.decode()


# Creating a flow


def test_it_creates_a_flow_with_an_empty_first_revision(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    assert client.get(URL + "new/").status_code == 200
    events = AuditEvent.objects.count()
    response = client.post(URL + "new/", {"name": "Login (staging)", "slug": "", "kind": "login"})
    assert response.status_code == 302
    assert response["Location"] == "/t/acme/flows/login-staging/"
    flow = Flow.objects.get(tenant=personas.tenant_a, slug="login-staging")
    assert (flow.name, flow.kind, flow.enabled, flow.is_system) == ("Login (staging)", "login", True, False)
    assert flow.current_revision is not None and flow.current_revision.number == 1
    assert flow.current_revision.created_by == personas.editor
    assert not Binding.objects.filter(revision__flow=flow).exists()
    created = AuditEvent.objects.order_by("-pk")[0]
    assert AuditEvent.objects.count() == events + 1
    assert (created.type, created.flow_slug, created.flow_revision) == ("flow.created", "login-staging", 1)
    assert (created.actor_kind, created.actor_name) == ("user", "a-editor")
    assert created.after == {"name": "Login (staging)", "kind": "login", "enabled": True}
    # granted to the tenant's roles: viewers see it, not other tenants
    client.force_login(personas.viewer)
    assert "login-staging" in slugs_in(client.get(URL))
    client.force_login(personas.outsider)
    assert client.get("/t/acme/flows/login-staging/revisions/").status_code == 404
    assert "login-staging" not in slugs_in(client.get("/t/globex/flows/"))


def test_a_duplicate_slug_is_a_field_error_and_keeps_what_was_typed(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post(URL + "new/", {"name": "Another login", "slug": "login", "kind": "registration"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "A flow with the slug “login” already exists in this tenant." in html
    assert 'value="Another login"' in html and 'value="login"' in html
    assert re.search(r'value="registration"[^>]*checked', html)
    assert 'class="form-errors"' in html
    assert Flow.objects.filter(tenant=personas.tenant_a).count() == 4


def test_a_derived_slug_that_is_taken_is_shown_in_the_field(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    html = client.post(URL + "new/", {"name": "Login", "slug": "", "kind": "login"}).content.decode()
    assert "A flow with the slug “login” already exists in this tenant." in html
    assert re.search(r'<input type="text" name="slug" value="login"', html)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "x", "slug": "Bad Slug!", "kind": "login"}, "Use 2–80 lowercase letters"),
        ({"name": "New", "slug": "", "kind": "login"}, "reserved"),
        ({"name": "Fine", "slug": "fine", "kind": "sign-up"}, "Select a valid choice"),
        ({"name": "", "slug": "fine", "kind": "login"}, "This field is required"),
    ],
)
def test_it_refuses_bad_input_next_to_the_field(client: Any, personas: Any, fields: Any, message: str) -> None:
    client.force_login(personas.editor)
    response = client.post(URL + "new/", fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Flow.objects.filter(tenant=personas.tenant_a).count() == 4


def test_a_flow_of_another_tenant_does_not_take_the_slug(client: Any, personas: Any) -> None:
    create_flow(personas.tenant_b, name="Staging", slug="staging", kind="login", acting=Acting.platform("tests"))
    client.force_login(personas.editor)
    assert client.post(URL + "new/", {"name": "Staging", "slug": "staging", "kind": "login"}).status_code == 302


def test_viewers_may_not_create_flows(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    assert client.get(URL + "new/").status_code == 403
    assert client.post(URL + "new/", {"name": "Sneaky", "slug": "sneaky", "kind": "login"}).status_code == 403
    assert not Flow.objects.filter(slug="sneaky").exists()
    client.force_login(personas.outsider)
    assert client.post(URL + "new/", {"name": "Sneaky", "slug": "sneaky", "kind": "login"}).status_code == 404


# Enabling and disabling


def test_disabling_asks_for_confirmation_first(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post(URL + "login/enabled/", {"enabled": "false", "sort": "-failure"})
    assert response.status_code == 302
    assert response["Location"] == "/t/acme/flows/?sort=-failure&confirm_disable=login"
    assert flow_of(personas.tenant_a).enabled
    html = client.get(response["Location"]).content.decode()
    assert "Disable Login (<code>login</code>)?" in html
    assert 'name="confirm" value="yes"' in html


def test_an_editor_disables_and_enables_a_flow_and_each_change_is_audited(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    response = client.post(URL + "login/enabled/", {"enabled": "false", "confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == URL
    assert not flow_of(personas.tenant_a).enabled
    assert "Disabled Login" in client.get(URL).content.decode()
    assert client.post(URL + "login/enabled/", {"enabled": "true"}).status_code == 302
    assert flow_of(personas.tenant_a).enabled
    # Enabling an enabled flow changes nothing and records nothing.
    assert client.post(URL + "login/enabled/", {"enabled": "true"}).status_code == 302
    assert client.post(URL + "login/enabled/", {"enabled": "maybe"}).status_code == 400
    events = list(AuditEvent.objects.filter(pk__gt=last).order_by("pk"))
    assert [(e.type, e.flow_slug, e.before, e.after) for e in events] == [
        ("flow.disabled", "login", {"enabled": True}, {"enabled": False}),
        ("flow.enabled", "login", {"enabled": False}, {"enabled": True}),
    ]
    assert all(e.actor_name == "a-editor" and e.request_id for e in events)


def test_viewers_may_not_enable_or_disable(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.post(URL + "login/enabled/", {"enabled": "false", "confirm": "yes"})
    assert response.status_code == 403
    assert flow_of(personas.tenant_a).enabled
    assert "Disable…" not in client.get(URL).content.decode()
    client.force_login(personas.outsider)
    assert client.post(URL + "login/enabled/", {"enabled": "false", "confirm": "yes"}).status_code == 404
    assert client.get(URL + "login/enabled/").status_code == 404


def test_a_disabled_flow_runs_no_actions(client: Any, personas: Any) -> None:
    tenant = personas.tenant_a
    attach(tenant, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 50, "message": "risky"}))
    assert run(tenant, POST_AUTH, risk=90).outcome["kind"] == "block"
    executed = ActionExecution.objects.count()
    client.force_login(personas.editor)
    client.post(URL + "login/enabled/", {"enabled": "false", "confirm": "yes"})
    result = run(tenant, POST_AUTH, risk=90)
    assert result.outcome["kind"] == "continue"
    assert result.executions == []
    assert ActionExecution.objects.count() == executed
    client.post(URL + "login/enabled/", {"enabled": "true"})
    assert run(tenant, POST_AUTH, risk=90).outcome["kind"] == "block"


def test_the_delivery_log_lists_a_bindings_deliveries(client: Any, personas: Any) -> None:
    from flows_app.services import BindingSpec
    from tests.flow_helpers import attach, run

    hook = {"url": "https://hooks.example.com/in", "secret": "a-signing-secret-123"}
    flow = attach(personas.tenant_a, "login.post-auth", BindingSpec("webhook-emit", "1.0.0", hook))
    run(personas.tenant_a, "login.post-auth", transaction_id="tx-log")
    binding = flow.current_revision.bindings.get()  # type: ignore[union-attr]
    client.force_login(personas.viewer)
    html = client.get(f"/t/acme/flows/login/deliveries/{binding.key.hex}/").content.decode()
    assert "https://hooks.example.com" in html and "tx-log" in html and "pending" in html
    # Only scheme and host are shown: the path may carry a token (Slack's URLs do).
    assert "a-signing-secret" not in html and "hooks.example.com/in" not in html
    editor = client.get("/t/acme/flows/login/").content.decode()
    assert f"/t/acme/flows/login/deliveries/{binding.key.hex}/" in editor
    client.force_login(personas.outsider)
    assert client.get(f"/t/acme/flows/login/deliveries/{binding.key.hex}/").status_code == 404


def test_each_row_links_to_promote_into_another_flow(client: Any, personas: Any) -> None:
    # The same page the flow editor's header links to: the preview is readable by every member,
    # confirming it is checked there against the target flow.
    client.force_login(personas.viewer)
    response = client.get(URL)
    assert 'href="/t/acme/flows/login/promote/">Promote into…</a>' in row_of(response, "login")
    assert 'href="/t/acme/flows/registration/promote/">Promote into…</a>' in row_of(response, "registration")
