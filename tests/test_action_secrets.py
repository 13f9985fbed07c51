"""A custom action's secrets as the service keeps them (contract §11): encrypted at rest, names
only in the audit trail, refused with the field and the reason."""

from __future__ import annotations

from typing import Any

import pytest

from actions_app.models import Action, ActionSecret
from actions_app.secrets import SecretRefused, delete_secret, list_secrets, secrets_for_execution, set_secret
from audit_app.models import AuditEvent
from tenants.acting import Acting
from tests.factories import acting_as
from tests.flow_helpers import custom_action

VALUE = "sk_live_0123456789abcdef"


@pytest.fixture
def action(personas: Any) -> Action:
    return custom_action(personas.tenant_a, "crm-lookup", 'return { kind: "continue" };', ["login.post-auth"])


def test_it_keeps_the_value_encrypted_and_gives_it_back_only_to_an_execution(personas: Any, action: Action) -> None:
    assert set_secret(action, "CRM_KEY", VALUE, acting=acting_as(personas.editor)) is False
    stored = ActionSecret.objects.get(action=action, name="CRM_KEY")
    assert VALUE not in stored.encrypted_value
    assert secrets_for_execution(action.pk) == {"CRM_KEY": VALUE}
    [listed] = list_secrets(action)
    assert (listed.name, listed.updated_by) == ("CRM_KEY", personas.editor.username)


def test_setting_and_deleting_are_audited_by_name_never_by_value(personas: Any, action: Action) -> None:
    set_secret(action, "CRM_KEY", VALUE, acting=acting_as(personas.editor))
    assert set_secret(action, "CRM_KEY", VALUE + "-rotated", acting=acting_as(personas.admin)) is True
    delete_secret(action, "CRM_KEY", acting=acting_as(personas.admin))
    events = list(
        AuditEvent.objects.filter(tenant=personas.tenant_a, type__startswith="action.secret_").order_by("seq")
    )
    assert [(e.type, e.target, e.actor_name) for e in events] == [
        ("action.secret_set", "CRM_KEY", personas.editor.username),
        ("action.secret_set", "CRM_KEY", personas.admin.username),
        ("action.secret_deleted", "CRM_KEY", personas.admin.username),
    ]
    assert events[1].after == {"name": "CRM_KEY", "replaced": True}
    assert all(VALUE not in repr((e.before, e.after)) for e in events)
    assert secrets_for_execution(action.pk) == {}


@pytest.mark.parametrize(
    ("name", "value", "field", "words"),
    [
        ("crm_key", VALUE, "name", "upper-case letter"),
        ("1KEY", VALUE, "name", "upper-case letter"),
        ("K" * 65, VALUE, "name", "upper-case letter"),
        ("CRM_KEY", "", "value", "must not be empty"),
        ("CRM_KEY", "x" * 4097, "value", "4,097 bytes"),
        ("CRM_KEY", "é" * 2049, "value", "4,098 bytes"),
        ("CRM_KEY", "a\x00b", "value", "NUL"),
    ],
)
def test_a_bad_name_or_value_is_refused_naming_the_field(
    personas: Any, action: Action, name: str, value: str, field: str, words: str
) -> None:
    with pytest.raises(SecretRefused) as refused:
        set_secret(action, name, value, acting=Acting.platform("tests"))
    assert refused.value.field == field and words in refused.value.message
    assert not ActionSecret.objects.exists()


def test_a_template_has_no_secrets_of_its_own(personas: Any) -> None:
    template = Action.objects.get(tenant=personas.tenant_a, slug="webhook-emit")
    with pytest.raises(SecretRefused, match="only custom actions"):
        set_secret(template, "KEY", VALUE, acting=Acting.platform("tests"))
