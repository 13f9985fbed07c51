"""The tenant settings page: API tokens (create, show once, list, revoke) and members (invite,
change role, remove), each change audited; who may do what; htmx partials and the no-JS fallback.
Invitations themselves (the link, accepting, expiry) are tested in test_invitations."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from audit_app.models import AuditEvent
from tenants.acting import Acting
from tenants.models import API_SCOPES, ApiToken, Invitation, Membership
from tenants.permissions import grant_object_to_operator
from tenants.roles import Role
from tenants.services import (
    MemberChangeNotAllowed,
    MembershipError,
    add_member,
    authenticate_token,
    change_member_role,
    check_member_change,
    create_api_token,
    remove_member,
)
from tests.factories import acting_as, add_custom_action, make_operator

SETTINGS = "/t/acme/settings/"
HTMX_TOKENS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "api-tokens"}
HTMX_MEMBERS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "members"}
SYSTEM = Acting.platform("tests")


def as_user(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


def token_post(**overrides: Any) -> dict[str, Any]:
    return {"name": "CI deploy", "scopes": ["actions:read", "flows:read"], "expiry": "90", "expires_on": ""} | overrides


def role_of(personas: Any, user: Any) -> str:
    return Membership.objects.get(tenant=personas.tenant_a, user=user).role


def events(personas: Any, event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(tenant=personas.tenant_a, type=event_type).order_by("id"))


def make_token(personas: Any, name: str, **kwargs: Any) -> tuple[ApiToken, str]:
    return create_api_token(personas.tenant_a, name=name, scopes=["actions:read"], **kwargs, acting=SYSTEM)


# --- The page and who sees what ---


@pytest.mark.parametrize("role", ["owner", "admin", "editor", "viewer"])
def test_it_shows_members_and_tokens_to_every_member(client: Any, personas: Any, role: str) -> None:
    make_token(personas, "Terraform")
    response = as_user(client, personas.by_role()[role]).get(SETTINGS)
    assert response.status_code == 200
    html = response.content.decode()
    for username in ("a-owner", "a-admin", "a-editor", "a-viewer"):
        assert f'data-member="{username}"' in html
    assert "Terraform" in html
    assert "b-owner" not in html
    manages = role in ("owner", "admin")
    assert ('id="token-form"' in html) is manages
    assert ('id="invite-member-form"' in html) is manages
    assert ("Revoke…" in html) is manages
    assert ("Only admins and owners create and revoke tokens." in html) is not manages


def test_it_links_settings_from_the_header(client: Any, personas: Any) -> None:
    html = as_user(client, personas.viewer).get("/t/acme/actions/").content.decode()
    assert f'href="{SETTINGS}"' in html


def test_it_answers_404_to_outsiders_and_contractors(client: Any, personas: Any) -> None:
    contractor = make_operator("contractor")
    grant_object_to_operator(contractor, "view_action", add_custom_action(personas.tenant_a, "contracted"))
    for user in (personas.outsider, contractor):
        as_user(client, user)
        assert client.get(SETTINGS).status_code == 404
        assert client.post(f"{SETTINGS}tokens/", token_post()).status_code == 404
        assert client.post(f"{SETTINGS}invitations/", {"email": "b@example.com", "role": "owner"}).status_code == 404
    assert not ApiToken.objects.exists() and not Invitation.objects.exists()
    # The contractor can still open what they were granted.
    assert client.get("/t/acme/actions/contracted/").status_code == 200


def test_it_shows_each_tokens_status_and_last_use(client: Any, personas: Any) -> None:
    used, secret = make_token(personas, "Used daily")
    assert authenticate_token(secret) is not None
    make_token(personas, "Never used")
    expired, _ = make_token(personas, "Old script")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = make_token(personas, "Leaked")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())

    html = as_user(client, personas.admin).get(SETTINGS).content.decode()
    rows = {
        name: row_html(html, f'data-token="{token.key_id}"')
        for name, token in [("used", used), ("expired", expired), ("revoked", revoked)]
    }
    assert "✓ Active" in rows["used"] and "0\xa0minutes ago" in rows["used"]
    assert "⌛ Expired" in rows["expired"] and "Revoke…" not in rows["expired"]
    assert "⊘ Revoked" in rows["revoked"] and "Revoke…" not in rows["revoked"]
    assert "Never" in row_html(html, "Never used")
    # Usable tokens come first.
    assert html.index("Used daily") < html.index("Old script")
    assert html.index("Never used") < html.index("Leaked")


def row_html(html: str, marker: str) -> str:
    at = html.index(marker)
    return html[html.rindex("<tr", 0, at) : html.index("</tr>", at)]


def test_it_lists_thousands_of_tokens_members_and_invitations_in_a_few_queries(
    client: Any, personas: Any, django_assert_max_num_queries: Any
) -> None:
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"op-{i:04d}", email=f"op-{i:04d}@example.com") for i in range(1500)
    )
    Membership.objects.bulk_create(Membership(tenant=personas.tenant_a, user=u, role="viewer") for u in users)
    ApiToken.objects.bulk_create(
        ApiToken(
            tenant=personas.tenant_a,
            name=f"token {i}",
            key_id=f"k{i:06d}",
            scopes=["actions:read"],
            created_by=personas.admin,
        )
        for i in range(2000)
    )
    Invitation.objects.bulk_create(
        Invitation(
            tenant=personas.tenant_a,
            email=f"invitee-{i:04d}@example.com",
            role="viewer",
            token_hash=f"{i:064d}",
            invited_by=personas.admin,
            expires_at=timezone.now() + timedelta(days=7),
        )
        for i in range(1000)
    )
    as_user(client, personas.admin)
    with django_assert_max_num_queries(9):
        response = client.get(SETTINGS)
    assert response.content.decode().count("data-token=") == 2000
    assert response.content.decode().count("data-member=") == 1504
    assert response.content.decode().count("data-invitation=") == 1000


# --- API tokens ---


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_it_creates_a_token_and_shows_its_secret_only_once(client: Any, personas: Any, htmx: bool) -> None:
    as_user(client, personas.admin)
    response = client.post(f"{SETTINGS}tokens/", token_post(), **(HTMX_TOKENS if htmx else {}))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    token = ApiToken.objects.get(tenant=personas.tenant_a, name="CI deploy")
    secret = html.split('id="new-token-value" value="', 1)[1].split('"', 1)[0]
    assert secret.startswith(f"acx_{token.key_id}_")
    assert "it is shown only this once" in html
    assert ("<html" in html) is not htmx  # htmx gets the tokens region only
    assert ('id="members"' in html) is not htmx

    authenticated = authenticate_token(secret)
    assert authenticated == token and authenticated.scopes == ["actions:read", "flows:read"]
    assert token.created_by == personas.admin
    assert token.expires_at is not None
    assert timedelta(days=89, hours=23) < token.expires_at - timezone.now() <= timedelta(days=90)

    again = client.get(SETTINGS).content.decode()
    assert secret not in again and secret.split("_", 2)[2] not in again
    assert f"acx_{token.key_id}_…" in again
    [event] = events(personas, "api_token.created")
    assert event.actor_kind == "user" and event.actor_name == "a-admin"
    assert event.after is not None and event.after["scopes"] == ["actions:read", "flows:read"]
    assert secret.split("_", 2)[2] not in str(event.after)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "  "}, "name", "Give the token a name."),
        ({"scopes": []}, "scopes", "Choose at least one scope."),
        ({"scopes": ["actions:read", "actions:destroy"]}, "scopes", "actions:destroy is not one of the available"),
        ({"expiry": "date"}, "expires_on", "Pick the day the token stops working."),
        ({"expiry": "date", "expires_on": "2001-01-01"}, "expires_on", "Pick a day after today."),
        ({"expiry": "date", "expires_on": "next week"}, "expires_on", "Enter a date as YYYY-MM-DD."),
        ({"expiry": "30", "expires_on": "2099-01-01"}, "expires_on", "choose “On a date…” or clear this date"),
    ],
)
def test_it_refuses_a_bad_token_form_and_keeps_what_was_typed(
    client: Any, personas: Any, overrides: dict[str, Any], field: str, message: str
) -> None:
    as_user(client, personas.owner)
    post = token_post(name="Keep me", scopes=["flows:write", "audit:read"]) | overrides
    html = client.post(f"{SETTINGS}tokens/", post, **HTMX_TOKENS).content.decode()
    assert message in html
    assert "No token was created" in html
    assert f'href="#id_{field}' in html  # the summary links to the field
    if "name" not in overrides:
        assert 'value="Keep me"' in html
    for scope in post["scopes"]:
        if scope in API_SCOPES:
            assert row_checked(html, scope)
    if post.get("expires_on"):
        assert f'value="{post["expires_on"]}"' in html
    assert not ApiToken.objects.exists()


def row_checked(html: str, scope: str) -> bool:
    at = html.index(f'value="{scope}"')
    tag = html[html.rindex("<input", 0, at) : html.index(">", at)]
    return "checked" in tag


@pytest.mark.parametrize(
    ("expiry", "expires_on", "expected"),
    [
        ("30", "", timedelta(days=30)),
        ("365", "", timedelta(days=365)),
        ("never", "", None),
    ],
)
def test_it_sets_the_expiry_the_operator_chose(
    client: Any, personas: Any, expiry: str, expires_on: str, expected: timedelta | None
) -> None:
    as_user(client, personas.admin).post(f"{SETTINGS}tokens/", token_post(expiry=expiry, expires_on=expires_on))
    token = ApiToken.objects.get()
    if expected is None:
        assert token.expires_at is None
    else:
        assert token.expires_at is not None
        assert abs(token.expires_at - timezone.now() - expected) < timedelta(minutes=1)


def test_a_token_expiring_on_a_date_stops_at_midnight_utc(client: Any, personas: Any) -> None:
    day = (timezone.now() + timedelta(days=10)).date()
    as_user(client, personas.admin).post(f"{SETTINGS}tokens/", token_post(expiry="date", expires_on=day.isoformat()))
    token = ApiToken.objects.get()
    assert token.expires_at is not None
    assert token.expires_at.isoformat() == f"{day.isoformat()}T00:00:00+00:00"


def test_it_asks_before_revoking_and_then_refuses_the_token(client: Any, personas: Any) -> None:
    token, secret = make_token(personas, "Old laptop")
    as_user(client, personas.admin)
    url = f"{SETTINGS}tokens/{token.key_id}/revoke/"

    asked = client.post(url)
    assert asked.status_code == 302
    assert asked["Location"] == f"{SETTINGS}?confirm_revoke={token.key_id}#api-tokens"
    confirm = client.get(f"{SETTINGS}?confirm_revoke={token.key_id}").content.decode()
    assert "Revoke Old laptop" in confirm and 'name="confirm" value="yes"' in confirm
    assert authenticate_token(secret) is not None

    done = client.post(url, {"confirm": "yes"}, follow=True)
    assert "Revoked Old laptop" in done.content.decode()
    assert authenticate_token(secret) is None
    assert "⊘ Revoked" in row_html(done.content.decode(), f'data-token="{token.key_id}"')
    [event] = events(personas, "api_token.revoked")
    assert event.actor_name == "a-admin" and event.target == f"Old laptop ({token.key_id})"

    # Revoking twice changes and records nothing.
    again = client.post(url, {"confirm": "yes"}, follow=True)
    assert "was already revoked" in again.content.decode()
    assert len(events(personas, "api_token.revoked")) == 1


def test_revoking_with_htmx_swaps_the_tokens_region(client: Any, personas: Any) -> None:
    token, _ = make_token(personas, "Old laptop")
    as_user(client, personas.owner)
    url = f"{SETTINGS}tokens/{token.key_id}/revoke/"
    asked = client.post(url, **HTMX_TOKENS).content.decode()
    assert asked.lstrip().startswith('<section id="api-tokens"') and 'id="confirm-revoke"' in asked
    done = client.post(url, {"confirm": "yes"}, **HTMX_TOKENS).content.decode()
    assert done.lstrip().startswith('<section id="api-tokens"')
    assert "Revoked Old laptop" in done and 'id="confirm-revoke"' not in done
    # The notice went with the region, not into the next page's messages.
    assert "Revoked Old laptop" not in client.get(SETTINGS).content.decode()


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_and_owners_manage_tokens(client: Any, personas: Any, role: str) -> None:
    token, secret = make_token(personas, "Keep")
    as_user(client, personas.by_role()[role])
    assert client.post(f"{SETTINGS}tokens/", token_post()).status_code == 403
    assert client.post(f"{SETTINGS}tokens/{token.key_id}/revoke/", {"confirm": "yes"}).status_code == 403
    assert ApiToken.objects.count() == 1 and authenticate_token(secret) is not None
    # A confirmation asked for in the URL shows nothing to them either.
    assert 'id="confirm-revoke"' not in client.get(f"{SETTINGS}?confirm_revoke={token.key_id}").content.decode()


def test_another_tenants_token_cannot_be_revoked(client: Any, personas: Any) -> None:
    theirs, secret = create_api_token(personas.tenant_b, name="Globex CI", scopes=["actions:read"], acting=SYSTEM)
    as_user(client, personas.owner)
    assert client.post(f"{SETTINGS}tokens/{theirs.key_id}/revoke/", {"confirm": "yes"}).status_code == 404
    assert authenticate_token(secret) is not None


def test_last_use_is_written_at_most_once_a_minute(personas: Any, django_assert_num_queries: Any) -> None:
    token, secret = make_token(personas, "Busy")
    assert authenticate_token(secret) is not None
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only: no UPDATE within the minute
        assert authenticate_token(secret) is not None
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    authenticate_token(secret)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first  # type: ignore[operator]


# --- Members ---


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Enter the email address to invite."),
        ("newbie", "Enter a valid email address."),
        ("newbie@", "Enter a valid email address."),
    ],
)
def test_it_refuses_an_address_it_cannot_invite_and_keeps_what_was_typed(
    client: Any, personas: Any, email: str, message: str
) -> None:
    as_user(client, personas.admin)
    html = client.post(f"{SETTINGS}invitations/", {"email": email, "role": "admin"}, **HTMX_MEMBERS).content.decode()
    assert html.lstrip().startswith('<section id="members"')
    field = html[html.index('id="field-email"') :]
    assert message in field[: field.index("</div>")]
    assert f'value="{email}"' in html or not email
    assert '<option value="admin" selected>' in html
    assert "Nobody was invited" in html
    assert not Invitation.objects.exists() and not events(personas, "member.invited")


def test_admins_cannot_invite_an_owner(client: Any, personas: Any) -> None:
    as_user(client, personas.admin)
    html = client.post(f"{SETTINGS}invitations/", {"email": "newbie@example.com", "role": "owner"}).content.decode()
    assert "Only an owner can make someone an owner." in html
    assert 'value="newbie@example.com"' in html
    assert '<option value="owner"' not in html  # not offered to admins at all
    assert not Invitation.objects.exists()

    html = client.post(f"{SETTINGS}members/a-editor/role/", {"role": "owner"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Only an owner can make someone an owner." in row_html(html, 'data-member="a-editor"')
    assert role_of(personas, personas.editor) == "editor"


def test_admins_manage_members_below_owner_but_not_owners(client: Any, personas: Any) -> None:
    as_user(client, personas.admin)
    html = client.get(SETTINGS).content.decode()
    owner_row = row_html(html, 'data-member="a-owner"')
    assert "Change role" not in owner_row and "Remove…" not in owner_row
    assert "Change role" in row_html(html, 'data-member="a-editor"')

    response = client.post(f"{SETTINGS}members/a-editor/role/", {"role": "admin"}, follow=True)
    assert "a-editor is now admin (was editor)." in response.content.decode()
    assert role_of(personas, personas.editor) == "admin"

    # Posted by hand: an owner's role and membership stay as they are.
    change = client.post(f"{SETTINGS}members/a-owner/role/", {"role": "viewer"}, follow=True).content.decode()
    assert "Only an owner can change or remove another owner." in change
    remove = client.post(f"{SETTINGS}members/a-owner/remove/", {"confirm": "yes"}, follow=True).content.decode()
    assert "Only an owner can change or remove another owner." in remove
    assert role_of(personas, personas.owner) == "owner"
    assert [e.type for e in AuditEvent.objects.filter(tenant=personas.tenant_a, type__startswith="member.role")] == [
        "member.role_changed"
    ]


def test_owners_grant_and_take_back_the_owner_role(client: Any, personas: Any) -> None:
    as_user(client, personas.owner)
    assert '<option value="owner"' in client.get(SETTINGS).content.decode()
    client.post(f"{SETTINGS}members/a-admin/role/", {"role": "owner"})
    assert role_of(personas, personas.admin) == "owner"
    client.post(f"{SETTINGS}members/a-admin/role/", {"role": "viewer"})
    assert role_of(personas, personas.admin) == "viewer"
    changes = events(personas, "member.role_changed")
    assert [(e.before, e.after) for e in changes] == [
        ({"user": "a-admin", "role": "admin"}, {"user": "a-admin", "role": "owner"}),
        ({"user": "a-admin", "role": "owner"}, {"user": "a-admin", "role": "viewer"}),
    ]


def test_the_last_owner_cannot_be_demoted_or_removed(client: Any, personas: Any) -> None:
    as_user(client, personas.owner)
    html = client.get(SETTINGS).content.decode()
    mine = row_html(html, 'data-member="a-owner"')
    assert "the only owner: make someone else owner before changing this" in mine
    assert "Change role" not in mine and "Leave…" not in mine

    # A stale page or a hand-made request: refused with the reason, on that member's row.
    refused = client.post(f"{SETTINGS}members/a-owner/role/", {"role": "admin"}, **HTMX_MEMBERS).content.decode()
    assert "a-owner is still owner: A tenant needs at least one owner" in row_html(refused, 'data-member="a-owner"')
    refused = client.post(f"{SETTINGS}members/a-owner/remove/", {"confirm": "yes"}, follow=True).content.decode()
    assert "a-owner is still a member: A tenant needs at least one owner" in refused
    assert role_of(personas, personas.owner) == "owner"
    assert not events(personas, "member.role_changed") and not events(personas, "member.removed")


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_removing_a_member_asks_first_and_is_audited(client: Any, personas: Any, htmx: bool) -> None:
    as_user(client, personas.admin)
    url = f"{SETTINGS}members/a-editor/remove/"
    headers = HTMX_MEMBERS if htmx else {}
    asked = client.post(url, **headers)
    if htmx:
        assert 'id="confirm-remove"' in asked.content.decode()
    else:
        assert asked["Location"] == f"{SETTINGS}?confirm_remove=a-editor#members"
        assert "Remove a-editor from Acme?" in client.get(asked["Location"]).content.decode()
    assert role_of(personas, personas.editor) == "editor"

    done = client.post(url, {"confirm": "yes"}, follow=not htmx, **headers).content.decode()
    assert "Removed a-editor from Acme." in done
    assert 'data-member="a-editor"' not in done
    assert not Membership.objects.filter(tenant=personas.tenant_a, user=personas.editor).exists()
    [event] = events(personas, "member.removed")
    assert event.actor_name == "a-admin" and event.before == {"user": "a-editor", "role": "editor"}
    assert as_user(client, personas.editor).get("/t/acme/actions/").status_code == 404


def test_an_admin_who_leaves_is_sent_home(client: Any, personas: Any) -> None:
    as_user(client, personas.admin)
    response = client.post(f"{SETTINGS}members/a-admin/remove/", {"confirm": "yes"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/"
    assert client.get(SETTINGS).status_code == 404
    assert "You left Acme." in client.get("/", follow=True).content.decode()


def test_changing_your_own_role_reloads_the_whole_page(client: Any, personas: Any) -> None:
    as_user(client, personas.admin)
    response = client.post(f"{SETTINGS}members/a-admin/role/", {"role": "editor"}, **HTMX_MEMBERS)
    assert response["HX-Redirect"] == SETTINGS
    html = client.get(SETTINGS).content.decode()
    assert "a-admin is now editor (was admin)." in html
    assert 'id="invite-member-form"' not in html and 'id="token-form"' not in html


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_and_owners_manage_members(client: Any, personas: Any, role: str) -> None:
    make_operator("newbie")
    as_user(client, personas.by_role()[role])
    assert client.post(f"{SETTINGS}invitations/", {"email": "newbie@example.com", "role": "viewer"}).status_code == 403
    assert client.post(f"{SETTINGS}members/a-viewer/role/", {"role": "admin"}).status_code == 403
    assert client.post(f"{SETTINGS}members/a-viewer/remove/", {"confirm": "yes"}).status_code == 403
    assert role_of(personas, personas.viewer) == "viewer"
    assert not Membership.objects.filter(user__username="newbie").exists() and not Invitation.objects.exists()


def test_another_tenants_member_is_not_found(client: Any, personas: Any) -> None:
    as_user(client, personas.owner)
    assert client.post(f"{SETTINGS}members/b-owner/remove/", {"confirm": "yes"}).status_code == 404
    assert client.post(f"{SETTINGS}members/b-owner/role/", {"role": "viewer"}).status_code == 404
    assert Membership.objects.filter(tenant=personas.tenant_b, user=personas.outsider, role="owner").exists()


# --- The rules, in the service ---


@pytest.mark.parametrize(
    ("acting", "current", "new", "allowed"),
    [
        (Role.OWNER, Role.OWNER, Role.ADMIN, True),
        (Role.OWNER, None, Role.OWNER, True),
        (Role.OWNER, Role.VIEWER, None, True),
        (Role.ADMIN, Role.VIEWER, Role.ADMIN, True),
        (Role.ADMIN, None, Role.EDITOR, True),
        (Role.ADMIN, Role.ADMIN, None, True),
        (Role.ADMIN, None, Role.OWNER, False),
        (Role.ADMIN, Role.EDITOR, Role.OWNER, False),
        (Role.ADMIN, Role.OWNER, Role.ADMIN, False),
        (Role.ADMIN, Role.OWNER, None, False),
        (Role.EDITOR, Role.VIEWER, Role.EDITOR, False),
        (Role.VIEWER, None, Role.VIEWER, False),
    ],
)
def test_member_change_rules(acting: Role, current: Role | None, new: Role | None, allowed: bool) -> None:
    if allowed:
        check_member_change(acting, current=current, new=new)
    else:
        with pytest.raises(MemberChangeNotAllowed):
            check_member_change(acting, current=current, new=new)


def test_services_apply_the_acting_role(personas: Any) -> None:
    owner_membership = Membership.objects.get(tenant=personas.tenant_a, user=personas.owner)
    with pytest.raises(MemberChangeNotAllowed):
        remove_member(owner_membership, acting=acting_as(personas.admin, role=Role.ADMIN))
    with pytest.raises(MemberChangeNotAllowed):
        add_member(
            personas.tenant_a, make_operator("x"), Role.OWNER, acting=Acting(SYSTEM.actor, SYSTEM.meta, role=Role.ADMIN)
        )
    assert Membership.objects.filter(tenant=personas.tenant_a).count() == 4


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(personas: Any) -> None:
    second = Membership.objects.get(tenant=personas.tenant_a, user=personas.admin)
    change_member_role(second, Role.OWNER, acting=SYSTEM)
    first, second = Membership.objects.filter(tenant=personas.tenant_a, role="owner").order_by("pk")
    first_demoted_uncommitted = threading.Event()
    let_first_commit = threading.Event()
    outcomes: dict[str, Any] = {}

    def demote(name: str, membership: Membership, hold_open: bool) -> None:
        try:
            with transaction.atomic():
                change_member_role(membership, Role.ADMIN, acting=Acting(SYSTEM.actor, SYSTEM.meta, role=Role.OWNER))
                if hold_open:  # the first demotion is done but not committed yet
                    first_demoted_uncommitted.set()
                    let_first_commit.wait(timeout=10)
            outcomes[name] = "demoted"
        except MembershipError as error:
            outcomes[name] = str(error)
        finally:
            first_demoted_uncommitted.set()
            connection.close()

    one = threading.Thread(target=demote, args=("first", first, True))
    one.start()
    assert first_demoted_uncommitted.wait(timeout=10)
    two = threading.Thread(target=demote, args=("second", second, False))
    two.start()
    two.join(timeout=1)  # the second demotion has to wait for the first one's transaction
    assert two.is_alive()
    let_first_commit.set()
    one.join()
    two.join()
    assert outcomes == {
        "first": "demoted",
        "second": "A tenant needs at least one owner: make someone else owner first.",
    }
    assert Membership.objects.filter(tenant=personas.tenant_a, role="owner").count() == 1


def test_a_demoted_owner_cannot_still_grant_owner_with_the_role_they_had(personas: Any) -> None:
    """The acting role is re-read under the tenant lock, not taken from the start of the request."""
    from tenants.models import Membership
    from tenants.roles import Role
    from tenants.services import MemberChangeNotAllowed, change_member_role

    owner_membership = Membership.objects.get(tenant=personas.tenant_a, user=personas.owner)
    Membership.objects.filter(pk=owner_membership.pk).update(role=Role.ADMIN.value)  # demoted meanwhile
    editor = Membership.objects.get(tenant=personas.tenant_a, user=personas.editor)
    with pytest.raises(MemberChangeNotAllowed):
        change_member_role(editor, Role.OWNER, acting=acting_as(personas.owner, role=Role.OWNER))
    editor.refresh_from_db()
    assert editor.role == Role.EDITOR.value
