"""Duplicating a flow from the flows list and the flow page: a new flow of the same kind whose
first revision holds the source's bindings (secrets copied as stored), audited as `flow.created`
naming the source."""

from __future__ import annotations

import re
from typing import Any

import pytest

from audit_app.models import AuditEvent
from flows_app.bindings import binding_config
from flows_app.models import Binding, Flow
from flows_app.services import BindingSpec, create_flow
from tests.factories import web
from tests.flow_helpers import SYSTEM, attach, flow_of

URL = "/t/acme/flows/login/duplicate/"
PRE = "login.pre-credential-check"
POST_AUTH = "login.post-auth"
HOOK = {"url": "https://hooks.example.com/in", "secret": "signing-secret-0123456789"}


@pytest.fixture
def login_with_bindings(personas: Any) -> Any:
    """login r3: a rate limit in pre-credential-check, a webhook (with a secret) and a disabled
    risk block in post-auth."""
    tenant = personas.tenant_a
    attach(tenant, PRE, BindingSpec("rate-limit-by-ip", "1.1.0", {"limit": 5, "window_seconds": 60}))
    attach(
        tenant,
        POST_AUTH,
        BindingSpec("webhook-emit", "1.0.0", HOOK, on_error="continue", timeout_ms=700),
        BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70, "message": "risky"}, enabled=False),
    )
    return personas


def test_the_form_suggests_a_name_and_a_free_slug(login_with_bindings: Any) -> None:
    editor = web(login_with_bindings.editor)
    html = editor.get(URL).content.decode()
    assert "Duplicate Login" in html
    assert 'value="Login (copy)"' in html and 'value="login-copy"' in html
    assert "3 actions" in html and "<code>r3</code>" in html
    create_flow(login_with_bindings.tenant_a, name="Copy", slug="login-copy", kind="login", acting=SYSTEM)
    assert 'value="login-copy-2"' in editor.get(URL).content.decode()


def test_an_editor_duplicates_a_flow_with_its_bindings_and_it_is_audited(login_with_bindings: Any) -> None:
    personas = login_with_bindings
    editor = web(personas.editor)
    last_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    response = editor.post(URL, {"name": "Login (staging)", "slug": "login-staging"})
    assert response.status_code == 302 and response["Location"] == "/t/acme/flows/login-staging/"
    page = editor.get(response["Location"]).content.decode()
    assert "Duplicated from login r3 as Login (staging) with 3 actions." in page
    source, copy = flow_of(personas.tenant_a), flow_of(personas.tenant_a, "login-staging")
    first = copy.current_revision
    assert first is not None
    assert (copy.kind, copy.name, copy.is_system, first.number) == ("login", "Login (staging)", False, 1)
    assert (first.created_by, first.comment) == (personas.editor, "Duplicated from login r3")

    def described(flow: Flow) -> list[tuple[Any, ...]]:
        rows = Binding.objects.filter(revision=flow.current_revision).order_by("trigger", "position")
        return [
            (
                b.trigger,
                b.position,
                b.action.slug,
                b.pinned_version.version,
                b.config,
                b.enabled,
                b.on_error,
                b.timeout_ms,
                b.encrypted_secrets,
                binding_config(b),
            )
            for b in rows
        ]

    assert described(copy) == described(source)
    assert binding_config(Binding.objects.get(revision=copy.current_revision, action__slug="webhook-emit")) == HOOK
    # Its own attachments: keys (which rate-limit counters and audit diffs follow) are new.
    source_keys = set(Binding.objects.filter(revision__flow=source).values_list("key", flat=True))
    assert not source_keys & set(Binding.objects.filter(revision__flow=copy).values_list("key", flat=True))
    events = list(AuditEvent.objects.filter(pk__gt=last_event).order_by("pk"))
    assert [(e.type, e.flow_slug, e.flow_revision) for e in events] == [
        ("flow.created", "login-staging", 1),
        ("flow.action_attached", "login-staging", 1),
        ("flow.action_attached", "login-staging", 1),
        ("flow.action_attached", "login-staging", 1),
    ]
    created = events[0]
    assert created.after == {
        "name": "Login (staging)",
        "kind": "login",
        "enabled": True,
        "duplicated_from": {"flow": "login", "revision": 3},
    }
    assert all(e.actor_name == "a-editor" and e.request_id for e in events)
    assert {e.target for e in events} == {"Duplicated from login r3"}
    assert "signing-secret" not in str([e.after for e in events])
    # The copy is granted to the tenant's roles like any new flow.
    assert web(personas.viewer).get("/t/acme/flows/login-staging/").status_code == 200
    assert web(personas.outsider).get("/t/acme/flows/login-staging/").status_code == 404


def test_an_empty_flow_duplicates_to_an_empty_flow(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post("/t/acme/flows/token-refresh/duplicate/", {"name": "Refresh 2", "slug": ""})
    assert response.status_code == 302 and response["Location"] == "/t/acme/flows/refresh-2/"
    copy = flow_of(personas.tenant_a, "refresh-2")
    assert copy.kind == "token-refresh" and not Binding.objects.filter(revision__flow=copy).exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "Another", "slug": "login"}, "Slug", "A flow with the slug “login” already exists in this tenant."),
        ({"name": "Another", "slug": "Bad Slug!"}, "Slug", "Use 2–80 lowercase letters"),
        ({"name": "Another", "slug": "new"}, "Slug", "reserved"),
        ({"name": "", "slug": "fine-copy"}, "Name", "This field is required"),
        ({"name": "x" * 121, "slug": "fine-copy"}, "Name", "at most 120 characters"),
    ],
)
def test_bad_input_is_named_next_to_its_field_and_kept(
    login_with_bindings: Any, fields: dict[str, str], field: str, message: str
) -> None:
    response = web(login_with_bindings.editor).post(URL, fields)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert re.search(rf'<li><a href="#id_\w+">{field}</a>: ', html)  # the summary names the field
    assert f'value="{fields["slug"]}"' in html.replace("&quot;", '"') or not fields["slug"]
    if fields["name"]:
        assert f'value="{fields["name"]}"' in html
    assert Flow.objects.filter(tenant=login_with_bindings.tenant_a).count() == 4


def test_viewers_may_not_duplicate_and_outsiders_see_nothing(login_with_bindings: Any) -> None:
    personas = login_with_bindings
    viewer = web(personas.viewer)
    assert viewer.get(URL).status_code == 403
    assert viewer.post(URL, {"name": "Sneaky", "slug": "sneaky"}).status_code == 403
    outsider = web(personas.outsider)
    assert outsider.get(URL).status_code == 404
    assert outsider.post(URL, {"name": "Sneaky", "slug": "sneaky"}).status_code == 404
    # Their own tenant's flow by a slug that is not there: 404, whoever asks.
    assert web(personas.editor).get("/t/acme/flows/nope/duplicate/").status_code == 404
    assert not Flow.objects.filter(slug="sneaky").exists()


def test_the_list_and_the_flow_page_link_to_duplicate_for_editors(login_with_bindings: Any) -> None:
    editor = web(login_with_bindings.editor)
    assert f'href="{URL}">Duplicate…</a>' in editor.get("/t/acme/flows/").content.decode()
    assert f'href="{URL}"' in editor.get("/t/acme/flows/login/").content.decode()
    viewer = web(login_with_bindings.viewer)
    assert URL not in viewer.get("/t/acme/flows/").content.decode()
    assert URL not in viewer.get("/t/acme/flows/login/").content.decode()
