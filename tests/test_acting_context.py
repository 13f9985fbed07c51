"""One acting context (tenants.acting.Acting) for every write: a write service cannot be called
without saying who acts, and what the console or the API says lands in the audit event."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from audit_app.models import AuditEvent
from tests.factories import bearer, web
from tests.flow_helpers import custom_action

# Every public write service that records an audit event, by module.
WRITE_SERVICES: dict[str, list[str]] = {
    "tenants.services": [
        "add_member",
        "change_member_role",
        "remove_member",
        "create_api_token",
        "revoke_api_token",
    ],
    "tenants.invitations": ["invite_member", "revoke_invitation", "accept_invitation", "sign_up_with_invitation"],
    "audit_app.retention": ["set_retention", "purge_tenant"],
    "actions_app.versioning": ["create_custom_action", "save_action_version", "publish_version"],
    "actions_app.secrets": ["set_secret", "delete_secret"],
    "flows_app.services": ["save_flow_slots", "create_flow", "set_flow_enabled"],
    "flows_app.rollout": ["roll_out_action"],
    "flows_app.replacing": ["restore_revision", "promote_flow", "carry_out"],
    "flows_app.duplicating": ["duplicate_flow"],
    "flows_app.deleting": ["delete_action", "delete_flow"],
    "flows_app.attaching": ["attach_action"],
    "flows_app.engine": ["run_flow"],
    "flows_app.sign_in": ["run_sign_in"],
}
# What the acting context replaced; no write service may take these any more.
REPLACED = {"actor", "meta", "user", "author", "created_by", "invited_by", "acting_role", "occurred_at"}
# Calls that make a function a write: the audit writers, and the write services themselves.
WRITING_CALLS = (
    "record(",
    "record_many(",
    "record_event(",
    "_revoke(",
    "_create_membership(",
    *(f"{name}(" for names in WRITE_SERVICES.values() for name in names),
)


def _services() -> list[tuple[str, Callable[..., Any]]]:
    return [
        (f"{module}.{name}", getattr(importlib.import_module(module), name))
        for module, names in WRITE_SERVICES.items()
        for name in names
    ]


@pytest.mark.parametrize(("name", "service"), _services(), ids=[name for name, _ in _services()])
def test_every_write_service_takes_one_required_keyword_only_acting(name: str, service: Callable[..., Any]) -> None:
    parameters = inspect.signature(service).parameters
    acting = parameters.get("acting")
    assert acting is not None, f"{name} takes no acting context"
    assert acting.kind is inspect.Parameter.KEYWORD_ONLY
    assert acting.default is inspect.Parameter.empty, f"{name} defaults its acting context"
    # Keywords only: `add_member(tenant, user, role)` names the member it adds, not who acts.
    keywords = {p.name for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert not REPLACED & keywords, f"{name} still takes {sorted(REPLACED & keywords)}"


@pytest.mark.parametrize(("name", "service"), _services(), ids=[name for name, _ in _services()])
def test_calling_a_write_service_without_acting_is_a_type_error(name: str, service: Callable[..., Any]) -> None:
    positional = [
        p
        for p in inspect.signature(service).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is inspect.Parameter.empty
    ]
    required_keywords = {
        p.name: None
        for p in inspect.signature(service).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty and p.name != "acting"
    }
    # Refused before the body runs, so nothing (not even the database) is touched.
    with pytest.raises(TypeError, match="acting"):
        service(*[None] * len(positional), **required_keywords)


@pytest.mark.parametrize("module", sorted(WRITE_SERVICES))
def test_no_public_write_in_a_services_module_is_left_out(module: str) -> None:
    """A new public function that writes audit events must be listed above (and so take `acting`)."""
    loaded = importlib.import_module(module)
    writing = {
        name
        for name, function in inspect.getmembers(loaded, inspect.isfunction)
        if function.__module__ == module
        and not name.startswith("_")
        and any(call in inspect.getsource(function).replace(f"def {name}(", "", 1) for call in WRITING_CALLS)
    }
    assert writing <= set(WRITE_SERVICES[module])


CONSOLE = {"HTTP_X_REQUEST_ID": "req-acting-0001", "REMOTE_ADDR": "198.51.100.23"}


def _last(personas: Any, event_type: str) -> AuditEvent:
    return AuditEvent.objects.filter(tenant=personas.tenant_a, type=event_type).latest("seq")


def _assert_operator(event: AuditEvent, user: Any) -> None:
    assert (event.actor_kind, event.actor_id, event.actor_name) == ("user", str(user.pk), user.get_username())
    assert (event.request_id, event.ip) == ("req-acting-0001", "198.51.100.23")


def test_a_tenants_write_in_the_console_records_the_operator_and_the_request(personas: Any) -> None:
    post = {"name": "CI deploy", "scopes": ["actions:read"], "expiry": "90", "expires_on": ""}
    response = web(personas.admin).post("/t/acme/settings/tokens/", post, **CONSOLE)
    assert response.status_code == 200
    _assert_operator(_last(personas, "api_token.created"), personas.admin)


def test_an_actions_write_in_the_console_records_the_operator_and_the_request(personas: Any) -> None:
    custom_action(personas.tenant_a, "doomed", "return { kind: 'continue' };", ["login.post-auth"])
    response = web(personas.owner).post("/t/acme/actions/doomed/delete/", **CONSOLE)
    assert response.status_code == 302
    _assert_operator(_last(personas, "action.deleted"), personas.owner)


def test_a_flows_write_in_the_console_records_the_operator_and_the_request(personas: Any) -> None:
    response = web(personas.admin).post(
        "/t/acme/flows/login/enabled/", {"enabled": "false", "confirm": "yes"}, **CONSOLE
    )
    assert response.status_code in (200, 302)
    _assert_operator(_last(personas, "flow.disabled"), personas.admin)


def test_an_api_write_records_the_token(client: Any, personas: Any, api_token: Any) -> None:
    custom_action(personas.tenant_a, "doomed", "return { kind: 'continue' };", ["login.post-auth"])
    token = api_token("actions:write")
    response = client.delete("/api/v1/actions/doomed", headers=bearer(token) | {"X-Request-ID": "req-acting-api1"})
    assert response.status_code == 204
    event = _last(personas, "action.deleted")
    key_id = token.split("_")[1]
    assert (event.actor_kind, event.actor_id, event.actor_name) == ("token", key_id, "test token")
    assert event.request_id == "req-acting-api1"
