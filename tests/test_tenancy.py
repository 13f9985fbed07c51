from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory

from actions_app.models import Action
from audit_app.models import AuditEvent
from flows_app.models import Flow
from orchestration.founding import create_tenant
from tenants.access import get_visible_or_404, require_object_perm, tenant_access, visible
from tenants.acting import Acting
from tenants.models import Membership
from tenants.permissions import grant_object_to_operator
from tenants.roles import Role
from tenants.services import MembershipError, add_member, change_member_role, remove_member
from tests.factories import acting_as, add_custom_action, make_operator

SYSTEM = Acting.platform("tests")


def access_for(user: Any, tenant_slug: str) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    return tenant_access(request, tenant_slug)


def test_it_creates_a_tenant_with_four_system_flows_and_ten_templates(db: None) -> None:
    tenant = create_tenant(slug="initech", name="Initech")
    flows = Flow.objects.filter(tenant=tenant)
    assert sorted(f.slug for f in flows) == ["login", "password-reset", "registration", "token-refresh"]
    assert all(f.is_system and f.current_revision and f.current_revision.number == 1 for f in flows)
    templates = Action.objects.filter(tenant=tenant, kind="template")
    assert templates.count() == 10
    assert sorted(v.version for v in templates.get(slug="rate-limit-by-ip").versions.all()) == ["1.0.0", "1.1.0"]


def test_it_refuses_a_bad_tenant_slug(db: None) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        create_tenant(slug="Bad Slug!", name="x")
    assert "slug" in error.value.message_dict


@pytest.mark.parametrize(
    ("role", "can_change", "can_publish", "can_delete"),
    [
        ("viewer", False, False, False),
        ("editor", True, False, False),
        ("admin", True, True, False),
        ("owner", True, True, True),
    ],
)
def test_roles_nest(personas: Any, role: str, can_change: bool, can_publish: bool, can_delete: bool) -> None:
    action = add_custom_action(personas.tenant_a, "nesting")
    access = access_for(personas.by_role()[role], "acme")
    assert get_visible_or_404(access, "view_action", Action.objects.all(), slug="nesting") == action
    for perm, allowed in (
        ("change_action", can_change),
        ("publish_action", can_publish),
        ("delete_action", can_delete),
    ):
        if allowed:
            require_object_perm(access, perm, action)
        else:
            with pytest.raises(PermissionDenied):
                require_object_perm(access, perm, action)


def test_a_member_sees_nothing_of_another_tenant(personas: Any) -> None:
    add_custom_action(personas.tenant_b, "theirs")
    access = access_for(personas.owner, "acme")
    with pytest.raises(Http404):
        get_visible_or_404(access, "view_action", Action.objects.all(), slug="theirs")
    with pytest.raises(Http404):
        access_for(personas.owner, "globex")


def test_a_single_action_can_be_granted_to_one_contractor(personas: Any) -> None:
    granted = add_custom_action(personas.tenant_a, "contracted")
    add_custom_action(personas.tenant_a, "not-contracted")
    contractor = make_operator("contractor")
    grant_object_to_operator(contractor, "view_action", granted)
    grant_object_to_operator(contractor, "change_action", granted)

    access = access_for(contractor, "acme")
    assert access.membership is None
    assert list(visible(access, "view_action", Action.objects.all())) == [granted]
    require_object_perm(access, "change_action", granted)
    with pytest.raises(PermissionDenied):
        require_object_perm(access, "publish_action", granted)
    assert not visible(access, "view_flow", Flow.objects.all()).exists()
    assert not access.can("create_action")
    # The grant opens nothing in another tenant.
    with pytest.raises(Http404):
        access_for(contractor, "globex")


def test_global_model_permissions_open_no_tenant(personas: Any) -> None:
    from django.contrib.auth.models import Permission

    add_custom_action(personas.tenant_b, "theirs")
    personas.owner.user_permissions.add(Permission.objects.get(codename="view_action"))
    access = access_for(personas.owner, "acme")
    assert not visible(access, "view_action", Action.objects.filter(slug="theirs")).exists()


def test_member_changes_are_audited(personas: Any) -> None:
    newcomer = make_operator("newcomer")
    membership = add_member(personas.tenant_a, newcomer, Role.VIEWER, acting=acting_as(personas.owner))
    change_member_role(membership, Role.EDITOR, acting=acting_as(personas.owner))
    access = access_for(newcomer, "acme")
    require_object_perm(access, "change_action", add_custom_action(personas.tenant_a, "after-promotion"))
    remove_member(membership, acting=acting_as(personas.owner))

    events = list(AuditEvent.objects.filter(tenant=personas.tenant_a, target="newcomer").order_by("id"))
    assert [e.type for e in events] == ["member.added", "member.role_changed", "member.removed"]
    assert events[1].before == {"user": "newcomer", "role": "viewer"}
    assert events[1].after == {"user": "newcomer", "role": "editor"}
    assert all(e.actor_kind == "user" and e.actor_name == "a-owner" for e in events)
    with pytest.raises(Http404):
        access_for(newcomer, "acme")


def test_the_last_owner_cannot_leave_or_be_demoted(personas: Any) -> None:
    owner_membership = Membership.objects.get(tenant=personas.tenant_a, user=personas.owner)
    with pytest.raises(MembershipError):
        remove_member(owner_membership, acting=SYSTEM)
    with pytest.raises(MembershipError):
        change_member_role(owner_membership, Role.ADMIN, acting=SYSTEM)
    assert Membership.objects.get(pk=owner_membership.pk).role == "owner"
    # With a second owner, the first may step down.
    second = Membership.objects.get(tenant=personas.tenant_a, user=personas.admin)
    change_member_role(second, Role.OWNER, acting=SYSTEM)
    change_member_role(owner_membership, Role.ADMIN, acting=SYSTEM)
    assert Membership.objects.get(pk=owner_membership.pk).role == "admin"


def test_adding_a_member_twice_is_refused(personas: Any) -> None:
    with pytest.raises(MembershipError):
        add_member(personas.tenant_a, personas.viewer, Role.EDITOR, acting=SYSTEM)


def test_refusals_are_console_pages_that_say_why(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    refused = client.post("/t/acme/flows/login/enabled/", {"enabled": "0"})
    assert refused.status_code == 403
    body = refused.content.decode()
    assert "Not allowed" in body and "Your role does not allow this" in body and "Sign out" in body
    missing = client.get("/t/globex/actions/")
    assert missing.status_code == 404
    text = missing.content.decode()
    # The same words for "does not exist" and "belongs to another tenant".
    assert "not shared with you" in text and "globex" not in text.split("<main", 1)[1]
    assert client.get("/t/no-such-tenant/actions/").content.decode().count("not shared with you") == 1
