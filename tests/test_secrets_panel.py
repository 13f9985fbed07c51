"""The Secrets panel of a custom action's page: who may set, replace and delete a secret, the htmx
panel beside the full-page POST/redirect, errors next to the field with the name kept, and the
value never in any page."""

from __future__ import annotations

from typing import Any

import pytest

from actions_app.models import Action, ActionKind
from actions_app.secrets import secrets_for_execution, set_secret
from audit_app.models import AuditEvent
from tenants.acting import Acting
from tests.factories import add_custom_action, region

VALUE = "sk_live_0123456789abcdef"
PAGE = "/t/acme/actions/crm-lookup/"
SET = PAGE + "secrets/"
HTMX = {"HX-Request": "true", "HX-Target": "secrets"}


@pytest.fixture
def action(personas: Any) -> Action:
    return add_custom_action(personas.tenant_a, "crm-lookup")


def delete_url(name: str) -> str:
    return f"{PAGE}secrets/{name}/delete/"


@pytest.mark.parametrize("role", ["owner", "admin", "editor"])
def test_who_may_change_the_action_sets_replaces_and_deletes(
    client: Any, personas: Any, action: Action, role: str
) -> None:
    client.force_login(personas.by_role()[role])
    response = client.post(SET, {"name": "CRM_KEY", "value": VALUE})
    assert response.status_code == 302 and response["Location"] == PAGE + "#secrets"
    page = client.get(response["Location"]).content.decode()
    assert "Added the secret CRM_KEY." in page
    assert "<code>CRM_KEY</code>" in region(page, "secrets", "</section>")
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE}

    response = client.post(SET, {"name": "CRM_KEY", "value": VALUE + "-2"}, follow=True)
    assert "Replaced the secret CRM_KEY." in response.content.decode()
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE + "-2"}

    confirm = client.get(delete_url("CRM_KEY"))
    assert confirm.status_code == 200 and 'role="alertdialog"' in confirm.content.decode()
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE + "-2"}  # asking deletes nothing
    response = client.post(delete_url("CRM_KEY"), follow=True)
    assert "Deleted the secret CRM_KEY." in response.content.decode()
    assert secrets_for_execution(action.pk) == {}
    events = AuditEvent.objects.filter(tenant=personas.tenant_a, type__startswith="action.secret_").order_by("seq")
    assert [(e.type, e.target, e.actor_name) for e in events] == [
        ("action.secret_set", "CRM_KEY", personas.by_role()[role].username),
        ("action.secret_set", "CRM_KEY", personas.by_role()[role].username),
        ("action.secret_deleted", "CRM_KEY", personas.by_role()[role].username),
    ]


def test_viewers_see_the_names_but_cannot_change_them(client: Any, personas: Any, action: Action) -> None:
    set_secret(action, "CRM_KEY", VALUE, acting=Acting.platform("tests"))
    client.force_login(personas.viewer)
    panel = region(client.get(PAGE).content.decode(), "secrets", "</section>")
    assert "<code>CRM_KEY</code>" in panel and "tests" in panel
    assert 'id="secret-form"' not in panel and "Delete…" not in panel
    assert 'id="secrets-read-only"' in panel
    assert client.post(SET, {"name": "OTHER", "value": "x"}).status_code == 403
    assert client.post(SET, {"name": "OTHER", "value": "x"}, headers=HTMX).status_code == 403
    assert client.post(delete_url("CRM_KEY")).status_code == 403
    confirm = client.get(delete_url("CRM_KEY")).content.decode()
    assert 'id="cannot-delete-secret"' in confirm and 'method="post"' not in region(confirm, "main", "</main>")
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE}


def test_other_tenants_and_outsiders_get_404(client: Any, personas: Any, action: Action) -> None:
    theirs = add_custom_action(personas.tenant_b, "crm-lookup")
    set_secret(theirs, "THEIR_KEY", VALUE, acting=Acting.platform("tests"))
    set_secret(action, "CRM_KEY", VALUE, acting=Acting.platform("tests"))
    client.force_login(personas.owner)  # acme's owner, a stranger to globex
    other = "/t/globex/actions/crm-lookup/"
    assert client.post(other + "secrets/", {"name": "MINE", "value": "x"}).status_code == 404
    assert client.get(other + "secrets/THEIR_KEY/delete/").status_code == 404
    assert client.post(other + "secrets/THEIR_KEY/delete/").status_code == 404
    assert secrets_for_execution(theirs.pk) == {"THEIR_KEY": VALUE}
    client.force_login(personas.outsider)  # globex's owner, a stranger to acme
    assert client.post(SET, {"name": "MINE", "value": "x"}).status_code == 404
    assert client.post(delete_url("CRM_KEY")).status_code == 404
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE}


def test_an_unknown_secret_and_a_template_action_have_no_pages(client: Any, personas: Any, action: Action) -> None:
    client.force_login(personas.owner)
    assert client.get(delete_url("NEVER_SET")).status_code == 404
    assert client.post(delete_url("NEVER_SET")).status_code == 404
    template = Action.objects.filter(tenant=personas.tenant_a, kind=ActionKind.TEMPLATE).first()
    assert template is not None
    assert client.post(f"/t/acme/actions/{template.slug}/secrets/", {"name": "K", "value": "x"}).status_code == 404


def test_htmx_swaps_only_the_panel(client: Any, personas: Any, action: Action) -> None:
    client.force_login(personas.editor)
    response = client.post(SET, {"name": "CRM_KEY", "value": VALUE}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card secrets" id="secrets"')
    assert "<html" not in html and 'id="action-editor-form"' not in html
    assert "Added the secret CRM_KEY." in html and "<code>CRM_KEY</code>" in html
    assert 'name="name"' in html and 'value="CRM_KEY"' not in html  # the form is fresh again

    response = client.post(delete_url("CRM_KEY"), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Deleted the secret CRM_KEY." in html and 'id="no-secrets"' in html
    assert secrets_for_execution(action.pk) == {}


@pytest.mark.parametrize(
    ("name", "value", "field", "words"),
    [
        ("crm_key", VALUE, "name", "upper-case letter"),
        ("CRM_KEY", "x" * 4097 + VALUE, "value", "4 KiB"),
        ("CRM_KEY", "", "value", "required"),
        ("", VALUE, "name", "required"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_a_refused_secret_shows_the_error_by_the_field_keeps_the_name_and_never_the_value(
    client: Any, personas: Any, action: Action, name: str, value: str, field: str, words: str, htmx: bool
) -> None:
    client.force_login(personas.editor)
    response = client.post(SET, {"name": name, "value": value}, headers=HTMX if htmx else {})
    html = response.content.decode()
    assert response.status_code == (200 if htmx else 422)
    assert ("<html" in html) is not htmx
    summary = region(html, "secret-errors", "</div>")
    assert f'href="#secret-{field}"' in summary and words in summary
    assert words in region(html, f"field-secret-{field}", "</div>")
    assert 'aria-invalid="true"' in region(html, f"field-secret-{field}", "</div>")
    if name:
        assert f'value="{name}"' in region(html, "field-secret-name", "</div>")
    assert VALUE not in html and 'type="password"' in html
    assert not secrets_for_execution(action.pk)


def test_the_value_appears_in_no_page(client: Any, personas: Any, action: Action) -> None:
    client.force_login(personas.owner)
    answers = [
        client.post(SET, {"name": "CRM_KEY", "value": VALUE}, follow=True),
        client.post(SET, {"name": "CRM_KEY", "value": VALUE}, headers=HTMX),
        client.post(SET, {"name": "bad name", "value": VALUE}),
        client.get(PAGE),
        client.get(delete_url("CRM_KEY")),
        client.get("/t/acme/audit/"),
        client.post(delete_url("CRM_KEY"), follow=True),
    ]
    assert all(answer.status_code in (200, 422) for answer in answers)
    assert all(VALUE not in answer.content.decode() for answer in answers)
    panel = region(answers[3].content.decode(), "secrets", "</section>")
    assert 'autocomplete="off"' in panel and 'type="password"' in panel


def test_the_page_lists_secrets_with_a_fixed_number_of_queries(
    client: Any, personas: Any, action: Action, django_assert_max_num_queries: Any
) -> None:
    for n in range(30):
        set_secret(action, f"KEY_{n:02}", VALUE, acting=Acting.platform("tests"))
    client.force_login(personas.editor)
    client.get(PAGE)
    with django_assert_max_num_queries(60):
        html = client.get(PAGE).content.decode()
    assert html.count('data-secret="KEY_') == 30
