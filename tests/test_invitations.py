"""Invitations: an admin invites an email address with a role and gets a link, shown once; the
answer never tells whether the address has an account or is a member already. Following the link
a matching operator accepts (signed in, after signing in, or after signing up); any other link
state answers one "no longer valid" page."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit_app.models import AuditEvent
from tenants.acting import Acting
from tenants.invitations import InvitationNotValid, accept_invitation, invite_member, revoke_invitation
from tenants.models import Invitation, Membership, hash_token_secret
from tenants.roles import Role
from tests.factories import PASSWORD, acting_as, make_operator

SETTINGS = "/t/acme/settings/"
INVITE = f"{SETTINGS}invitations/"
HTMX_MEMBERS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "members"}
LINK_RE = re.compile(r'id="new-invitation-link" value="(http://testserver/invitations/([A-Za-z0-9_-]+)/)"')
NOT_VALID = "This invitation is no longer valid"
CSRF_RE = r'value="[A-Za-z0-9]{64}"|"X-CSRFToken": "[A-Za-z0-9]{64}"'


def link_for(token: str) -> str:
    return f"/invitations/{token}/"


def invite(personas: Any, email: str, role: Role = Role.EDITOR, *, by: Any = None) -> tuple[Invitation, str]:
    """An invitation sent by tenant A's admin through the service; returns it and its link path."""
    inviter = by or personas.admin
    invitation, link = invite_member(
        personas.tenant_a,
        email,
        role,
        link_for=link_for,
        acting=acting_as(inviter, role=Role(Membership.objects.get(tenant=personas.tenant_a, user=inviter).role)),
    )
    return invitation, link


def events(personas: Any, event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(tenant=personas.tenant_a, type=event_type).order_by("id"))


def member_role(personas: Any, user: Any) -> str | None:
    return Membership.objects.filter(tenant=personas.tenant_a, user=user).values_list("role", flat=True).first()


def without_per_request_values(html: str, email: str) -> str:
    """The answer with what differs by request alone blanked out: the address typed, the link's
    secret, the invitation's id, its expiry time and the CSRF tokens (masked afresh on every render)."""
    # The members table is the tenant's as it was (an invitation changes no membership); it lists
    # members' emails, which the admin sees anyway, so take it out before blanking the address.
    html = re.sub(r'<table class="data" id="member-table">.*?</table>', "MEMBERS", html, flags=re.S)
    html = html.replace(email, "EMAIL")
    html = re.sub(r"/invitations/[A-Za-z0-9_-]{20,}/", "/invitations/SECRET/", html)
    html = re.sub(r'(data-invitation="|invitations/|confirm_revoke_invitation=)\d+', r"\1ID", html)
    html = re.sub(r'value="[A-Za-z0-9]{64}"', 'value="CSRF"', html)
    # Expiry times, to the microsecond: a week from each request's own moment.
    html = re.sub(r'datetime="[^"]+"', 'datetime="TIME"', html)
    html = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "TIME", html)
    return re.sub(r'"X-CSRFToken": "[A-Za-z0-9]{64}"', '"X-CSRFToken": "CSRF"', html)


def answer_then_undo(client: Any, email: str, headers: dict[str, str]) -> tuple[str, list[str]]:
    """The admin's answer to inviting `email` and the SQL it ran (literals blanked), then the
    invitation undone, so every address is asked about from the same starting point."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        response = client.post(INVITE, {"email": email, "role": "editor"}, **headers)
        transaction.set_rollback(True)
    assert response.status_code == 200
    statements = [re.sub(r"'[^']*'|\"s\d+_x\d+\"|\b\d+\b", "?", q["sql"]) for q in queries.captured_queries]
    return without_per_request_values(response.content.decode(), email), statements


# --- Inviting: the same answer whoever the address belongs to ---


@pytest.mark.parametrize("headers", [{}, HTMX_MEMBERS], ids=["no-js", "htmx"])
def test_the_answer_is_the_same_for_an_account_an_unknown_address_and_a_member(
    client: Any, personas: Any, headers: dict[str, str]
) -> None:
    make_operator("newbie")
    client.force_login(personas.admin)
    has_account, has_account_sql = answer_then_undo(client, "newbie@example.com", headers)
    no_account, no_account_sql = answer_then_undo(client, "nobody@example.com", headers)
    member, member_sql = answer_then_undo(client, "a-viewer@example.com", headers)
    cased, cased_sql = answer_then_undo(client, "A-Viewer@Example.com", headers)
    assert has_account == no_account == member == cased
    assert "Invited EMAIL as editor." in has_account
    # No difference in the work done either: the same statements, so no timing tells them apart.
    assert has_account_sql == no_account_sql == member_sql == cased_sql
    assert not [sql for sql in has_account_sql if re.search(r'WHERE .*"auth_user"\."email"', sql)]


def test_the_audit_event_does_not_tell_either(personas: Any) -> None:
    make_operator("newbie")
    invite(personas, "newbie@example.com")
    invite(personas, "nobody@example.com")
    first, second = events(personas, "member.invited")
    assert isinstance(first.after, dict) and isinstance(second.after, dict)
    assert set(first.after) == set(second.after) == {"invitation", "email", "role", "expires_at", "invited_by"}
    assert (first.target, second.target) == ("newbie@example.com", "nobody@example.com")


@pytest.mark.parametrize("headers", [{}, HTMX_MEMBERS], ids=["no-js", "htmx"])
def test_it_shows_the_link_once_and_keeps_only_a_hash(
    client: Any, personas: Any, headers: dict[str, str], django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    client.force_login(personas.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(INVITE, {"email": "newbie@example.com", "role": "editor"}, **headers)
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    found = LINK_RE.search(html)
    assert found, html
    link, secret = found.groups()
    assert len(secret) >= 43  # 256 random bits
    assert "it is shown only this once" in html and "it is also written to the server log" in html
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hash_token_secret(secret)
    assert secret not in str(list(Invitation.objects.values()))
    # No mail server: the link goes to the log, once the invitation is stored.
    assert [r.getMessage() for r in caplog.records if r.name == "tenants.invitations" and link in r.getMessage()]

    again = client.get(SETTINGS).content.decode()
    assert secret not in again
    row = again[again.index(f'data-invitation="{invitation.pk}"') :]
    row = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row[: row.index("</li>")]))
    expires = (timezone.now() + timedelta(days=7)).date().isoformat()
    assert f"Invited newbie@example.com · editor · expires {expires}" in row
    assert "by a-admin" in row and "Revoke…" in row
    [event] = events(personas, "member.invited")
    assert event.actor_name == "a-admin" and secret not in str(event.after)


def test_an_invitation_expires_after_seven_days_and_the_page_says_so(client: Any, personas: Any) -> None:
    client.force_login(personas.admin)
    html = client.get(SETTINGS).content.decode()
    assert "expires after 7 days" in html and "The link works once, for 7 days." in html
    invitation, _ = invite(personas, "newbie@example.com")
    assert abs(invitation.expires_at - timezone.now() - timedelta(days=7)) < timedelta(minutes=1)


def test_pending_invitations_are_listed_to_every_member_but_only_managers_revoke(client: Any, personas: Any) -> None:
    invite(personas, "newbie@example.com")
    for role, user in personas.by_role().items():
        client.force_login(user)
        text = client.get(SETTINGS).content.decode()
        assert "Invited <strong>newbie@example.com</strong>" in text
        assert ("Revoke…</a></span>" in text) is (role in ("owner", "admin")), role


def test_inviting_an_address_again_replaces_its_pending_link(client: Any, personas: Any) -> None:
    first, first_link = invite(personas, "newbie@example.com")
    second, second_link = invite(personas, "NEWBIE@example.com", Role.ADMIN)
    first.refresh_from_db()
    assert first.revoked_at is not None and second.is_pending
    [replaced] = events(personas, "member.invitation_revoked")
    assert replaced.after == {"reason": "replaced by a new invitation"}
    assert NOT_VALID in client.get(first_link).content.decode()
    assert client.get(second_link).status_code == 200


# --- Who may invite and revoke ---


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_viewers_and_editors_cannot_invite_or_revoke(client: Any, personas: Any, role: str) -> None:
    invitation, _ = invite(personas, "newbie@example.com")
    client.force_login(personas.by_role()[role])
    assert client.post(INVITE, {"email": "other@example.com", "role": "viewer"}).status_code == 403
    assert client.post(f"{INVITE}{invitation.pk}/revoke/", {"confirm": "yes"}).status_code == 403
    assert Invitation.objects.count() == 1 and Invitation.objects.get().is_pending


def test_outsiders_get_404_and_cannot_touch_another_tenants_invitations(client: Any, personas: Any) -> None:
    invitation, _ = invite(personas, "newbie@example.com")
    client.force_login(personas.outsider)
    assert client.post(INVITE, {"email": "other@example.com", "role": "viewer"}).status_code == 404
    assert client.post(f"{INVITE}{invitation.pk}/revoke/", {"confirm": "yes"}).status_code == 404
    # Globex's owner, in their own tenant, naming acme's invitation: not found there either.
    revoke = client.post(f"/t/globex/settings/invitations/{invitation.pk}/revoke/", {"confirm": "yes"})
    assert revoke.status_code == 404
    assert Invitation.objects.get().is_pending


def test_an_admin_cannot_revoke_an_owners_invitation_but_an_owner_can(client: Any, personas: Any) -> None:
    invitation, _ = invite(personas, "boss@example.com", Role.OWNER, by=personas.owner)
    client.force_login(personas.admin)
    assert "Revoke…</a></span>" not in client.get(SETTINGS).content.decode()
    assert client.post(f"{INVITE}{invitation.pk}/revoke/", {"confirm": "yes"}).status_code == 403
    assert Invitation.objects.get().is_pending
    client.force_login(personas.owner)
    client.post(f"{INVITE}{invitation.pk}/revoke/", {"confirm": "yes"})
    assert not Invitation.objects.get().is_pending


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_revoking_asks_first_then_the_link_is_no_longer_valid(client: Any, personas: Any, htmx: bool) -> None:
    invitation, link = invite(personas, "newbie@example.com")
    client.force_login(personas.admin)
    url = f"{INVITE}{invitation.pk}/revoke/"
    headers = HTMX_MEMBERS if htmx else {}
    asked = client.post(url, **headers)
    if htmx:
        assert 'id="confirm-revoke-invitation"' in asked.content.decode()
    else:
        assert asked["Location"] == f"{SETTINGS}?confirm_revoke_invitation={invitation.pk}#members"
        assert "Revoke the invitation to newbie@example.com?" in client.get(asked["Location"]).content.decode()
    assert Invitation.objects.get().is_pending

    done = client.post(url, {"confirm": "yes"}, follow=not htmx, **headers).content.decode()
    assert "Revoked the invitation to newbie@example.com: its link no longer works." in done
    assert f'data-invitation="{invitation.pk}"' not in done
    [event] = events(personas, "member.invitation_revoked")
    assert event.actor_name == "a-admin" and event.target == "newbie@example.com"
    assert event.before is not None and event.before["role"] == "editor"
    assert NOT_VALID in client.get(link).content.decode()

    again = client.post(url, {"confirm": "yes"}, follow=True).content.decode()
    assert "was already used, revoked or expired; nothing changed." in again
    assert len(events(personas, "member.invitation_revoked")) == 1


@pytest.mark.parametrize("email", ["newbie@example.com", "nobody@example.com"])
def test_invitations_are_rate_limited_per_admin(client: Any, personas: Any, settings: Any, email: str) -> None:
    settings.INVITATIONS_PER_ADMIN_PER_HOUR = 3
    make_operator("newbie")
    for i in range(3):
        invite(personas, f"spam-{i}@example.com")
    client.force_login(personas.admin)
    html = client.post(INVITE, {"email": email, "role": "viewer"}).content.decode()
    assert "You have sent 3 invitations in the last hour, the most allowed" in html
    assert f'value="{email}"' in html and Invitation.objects.count() == 3
    # Another admin is not held up by this one's count...
    client.force_login(personas.owner)
    assert LINK_RE.search(client.post(INVITE, {"email": email, "role": "viewer"}).content.decode())
    # ...and an hour later this one may invite again.
    Invitation.objects.filter(invited_by=personas.admin).update(created_at=timezone.now() - timedelta(minutes=61))
    client.force_login(personas.admin)
    assert LINK_RE.search(client.post(INVITE, {"email": email, "role": "viewer"}).content.decode())


# --- Following the link ---


def test_a_signed_in_operator_with_the_invited_address_accepts(client: Any, personas: Any) -> None:
    newbie = get_user_model().objects.create_user("newbie", "Newbie@Example.com", PASSWORD)
    invitation, link = invite(personas, "newbie@example.com")
    client.force_login(newbie)
    page = client.get(link)
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "a-admin invited <strong>newbie@example.com</strong> to Acme" in html
    assert "Accept and join as editor" in html

    joined = client.post(f"{link}accept/", follow=True)
    assert joined.redirect_chain[-1][0] == "/t/acme/actions/"
    assert "You joined Acme as editor." in joined.content.decode()
    assert member_role(personas, newbie) == "editor"
    [added] = [e for e in events(personas, "member.added") if e.target == "newbie"]
    assert added.actor_kind == "user" and added.actor_name == "newbie"
    assert added.after is not None and added.after["role"] == "editor"
    assert added.after["invitation"] | {"expires_at": None} == {
        "invitation": invitation.pk,
        "email": "newbie@example.com",
        "role": "editor",
        "expires_at": None,
        "invited_by": "a-admin",
    }
    # Single use: the link is spent.
    assert client.get(link).status_code == 404
    assert client.post(f"{link}accept/").status_code == 404


def test_a_signed_out_visitor_signs_in_and_then_accepts(client: Any, personas: Any) -> None:
    make_operator("newbie")
    _, link = invite(personas, "newbie@example.com", Role.VIEWER)
    html = client.get(link).content.decode()
    assert f'href="/accounts/login/?next={link}"' in html
    assert f'href="{link}sign-up/"' in html
    assert client.post(f"{link}accept/")["Location"] == link  # nothing to accept as nobody

    signed_in = client.post("/accounts/login/", {"username": "newbie", "password": PASSWORD, "next": link})
    assert signed_in["Location"] == link
    client.post(f"{link}accept/")
    assert member_role(personas, get_user_model().objects.get(username="newbie")) == "viewer"


def test_a_signed_out_visitor_signs_up_with_the_invited_address_and_joins(client: Any, personas: Any) -> None:
    invitation, link = invite(personas, "Fresh.Person@example.com")
    page = client.get(f"{link}sign-up/").content.decode()
    assert 'value="Fresh.Person@example.com" readonly' in page
    form = {"username": "fresh", "password1": "long-enough-pass-9", "password2": "long-enough-pass-9"}
    joined = client.post(f"{link}sign-up/", form | {"email": "attacker@example.com"}, follow=True)
    assert joined.redirect_chain[-1][0] == "/t/acme/actions/"
    assert "You joined Acme as editor." in joined.content.decode()
    user = get_user_model().objects.get(username="fresh")
    assert user.email == "Fresh.Person@example.com"  # fixed to the invited address, never typed
    assert user.check_password("long-enough-pass-9")
    assert member_role(personas, user) == "editor"
    assert client.get("/t/acme/actions/").status_code == 200  # signed in as the new account
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and not invitation.is_pending


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"password1": "short", "password2": "short"}, "password2", "This password is too short."),
        ({"password1": "password123", "password2": "password123"}, "password2", "This password is too common."),
        ({"password1": "fresh-person@example", "password2": "fresh-person@example"}, "password2", "too similar"),
        ({"password2": "something-else-7"}, "password2", "The two password fields didn’t match."),
        ({"username": "a-viewer"}, "username", "A user with that username already exists."),
        ({"username": "bad name!"}, "username", "Use 3 to 40 characters: ASCII letters, digits"),
        ({"username": "", "password1": "", "password2": ""}, "username", "Choose a username."),
        ({"password1": "", "password2": ""}, "password1", "Choose a password."),
    ],
)
def test_sign_up_applies_djangos_password_validators_and_keeps_what_was_typed(
    client: Any, personas: Any, form: dict[str, str], field: str, message: str
) -> None:
    _, link = invite(personas, "fresh-person@example.com")
    post = {"username": "fresh", "password1": "long-enough-pass-9", "password2": "long-enough-pass-9"} | form
    response = client.post(f"{link}sign-up/", post)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No account was created" in html
    block = html[html.index(f'id="field-{field}"') :]
    assert message in block[: block.index("</div>")]
    assert f'value="{post["username"]}"' in html or not post["username"]
    assert not get_user_model().objects.filter(email="fresh-person@example.com").exists()
    assert Invitation.objects.get().is_pending


def test_signed_in_operators_are_sent_from_sign_up_back_to_the_invitation(client: Any, personas: Any) -> None:
    _, link = invite(personas, "newbie@example.com")
    client.force_login(personas.viewer)
    assert client.get(f"{link}sign-up/")["Location"] == link
    client.post(f"{link}sign-up/", {"username": "x", "password1": "long-pass-99!", "password2": "long-pass-99!"})
    assert not get_user_model().objects.filter(username="x").exists()


def test_an_operator_who_is_a_member_already_is_told_and_nothing_changes(client: Any, personas: Any) -> None:
    invitation, link = invite(personas, "a-viewer@example.com", Role.ADMIN)
    client.force_login(personas.viewer)
    html = client.get(link).content.decode()
    assert 'already a member of Acme (<span class="role">viewer</span>); this invitation changes nothing.' in html
    assert "Accept and join" not in html
    again = client.post(f"{link}accept/")
    assert again.status_code == 200 and "this invitation changes nothing" in again.content.decode()
    assert member_role(personas, personas.viewer) == "viewer"
    assert len(events(personas, "member.added")) == 4  # the personas only
    assert Invitation.objects.get(pk=invitation.pk).is_pending


def test_another_address_is_told_to_sign_in_as_the_invited_one(client: Any, personas: Any) -> None:
    _, link = invite(personas, "newbie@example.com")
    client.force_login(personas.outsider)
    page = client.get(link)
    assert page.status_code == 403
    html = page.content.decode()
    assert "This invitation is for newbie@example.com, and you are signed in as b-owner (b-owner@example.com)." in html
    assert "Sign in as the invited address to accept it." in html
    assert f'name="next" value="{link}"' in html  # sign out, and come back to the invitation
    assert client.post(f"{link}accept/").status_code == 403
    assert member_role(personas, personas.outsider) is None
    assert Invitation.objects.get().is_pending
    signed_out = client.post("/accounts/logout/", {"next": link})
    assert signed_out["Location"] == link
    assert "Create an account" in client.get(link).content.decode()


def test_every_link_that_does_not_work_gets_the_same_page(client: Any, personas: Any) -> None:
    expired, expired_link = invite(personas, "one@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_link = invite(personas, "two@example.com")
    revoke_invitation(revoked, acting=acting_as(personas.owner, role=Role.OWNER))
    used, used_link = invite(personas, "three@example.com")
    accept_invitation(used, acting=acting_as(make_operator("three")))
    unknown_link = link_for("x" * 43)

    def answers(as_user: Any) -> list[tuple[int, str]]:
        if as_user is not None:
            client.force_login(as_user)
        found = []
        for link in (expired_link, revoked_link, used_link, unknown_link):
            for response in (client.get(link), client.post(f"{link}accept/"), client.get(f"{link}sign-up/")):
                body = re.sub(CSRF_RE, "", response.content.decode())
                found.append((response.status_code, body))
        return found

    for user in (None, personas.viewer, get_user_model().objects.get(username="three")):
        found = answers(user)
        assert {status for status, _ in found} == {404}
        assert len({body for _, body in found}) == 1
        main = found[0][1].split('<main id="main"', 1)[1]
        assert NOT_VALID in main
        for leak in ("one@", "two@", "three@", "Acme", "acme", "expired", "revoked"):
            assert leak not in main


def test_an_invitation_revoked_while_its_page_was_open_cannot_be_accepted(client: Any, personas: Any) -> None:
    newbie = make_operator("newbie")
    invitation, link = invite(personas, "newbie@example.com")
    client.force_login(newbie)
    assert client.get(link).status_code == 200
    revoke_invitation(invitation, acting=acting_as(personas.admin, role=Role.ADMIN))
    assert NOT_VALID in client.post(f"{link}accept/").content.decode()
    assert member_role(personas, newbie) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_operators_accepting_at_once_use_the_invitation_once(personas: Any) -> None:
    invitation, _ = invite(personas, "twin@example.com")
    twins = [get_user_model().objects.create_user(f"twin-{i}", "twin@example.com", PASSWORD) for i in range(2)]
    both_ready = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def accept(user: Any) -> None:
        try:
            both_ready.wait(timeout=10)
            accept_invitation(invitation, acting=acting_as(user))
            outcomes[user.username] = "joined"
        except InvitationNotValid:
            outcomes[user.username] = "no longer valid"
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(twin,)) for twin in twins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes.values()) == ["joined", "no longer valid"]
    assert Membership.objects.filter(tenant=personas.tenant_a, user__in=twins).count() == 1


# --- Usernames a new account may have ---

USERNAME_RULE = "Use 3 to 40 characters: ASCII letters, digits"
LOOKS_LIKE = "too much like an existing username"


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("ali\u0441e", USERNAME_RULE),  # Cyrillic es
        ("\u0435ddie", USERNAME_RULE),  # Cyrillic ie
        ("vict\u03bfr", USERNAME_RULE),  # Greek omicron
        ("al\u0131ce", USERNAME_RULE),  # dotless i
        ("al\u0130ce", USERNAME_RULE),  # dotted capital I
        ("alic\u00e9", USERNAME_RULE),  # e acute
        ("ali\uff43e", "A user with that username already exists."),  # fullwidth c, which NFKC folds to c
        ("alice\u200b", USERNAME_RULE),  # zero-width space
        ("ab", USERNAME_RULE),
        ("a" * 41, USERNAME_RULE),
        ("gina@example.com", "not an email address"),
        ("someone@else.org", "not an email address"),
        ("ALICE", "A user with that username already exists."),
        ("a1ice", LOOKS_LIKE),
        ("al1ce", LOOKS_LIKE),
        ("aIice", LOOKS_LIKE),
        ("a.lice", LOOKS_LIKE),
        ("Alice_", LOOKS_LIKE),
        ("edd1e", LOOKS_LIKE),
        ("vict0r", LOOKS_LIKE),
        ("V1CT0R", LOOKS_LIKE),
        ("rnallory", LOOKS_LIKE),
        ("vvendy", LOOKS_LIKE),
        ("a_viewer", LOOKS_LIKE),
        ("a.vievver", LOOKS_LIKE),
    ],
)
def test_sign_up_refuses_usernames_that_are_not_plain_ascii_or_look_like_another(
    client: Any, personas: Any, username: str, message: str
) -> None:
    for existing in ("alice", "eddie", "victor", "gina", "mallory", "wendy"):
        make_operator(existing)
    _, link = invite(personas, "fresh-person@example.com")
    post = {"username": username, "password1": "long-enough-pass-9", "password2": "long-enough-pass-9"}
    response = client.post(f"{link}sign-up/", post)
    assert response.status_code == 200
    html = response.content.decode()
    block = html[html.index('id="field-username"') :]
    assert message in block[: block.index("</div>")], block
    assert not get_user_model().objects.filter(email="fresh-person@example.com").exists()
    assert Invitation.objects.get().is_pending


@pytest.mark.parametrize("username", ["alice2", "fresh.person_9-x", "Mallet", "abc", "a" * 40])
def test_sign_up_takes_a_plain_username_that_looks_like_no_other(client: Any, personas: Any, username: str) -> None:
    for existing in ("alice", "mallory", "wendy"):
        make_operator(existing)
    _, link = invite(personas, "fresh-person@example.com")
    post = {"username": username, "password1": "long-enough-pass-9", "password2": "long-enough-pass-9"}
    assert client.post(f"{link}sign-up/", post).status_code == 302
    assert get_user_model().objects.get(email="fresh-person@example.com").username == username


def test_the_sign_up_service_refuses_a_look_alike_too(personas: Any) -> None:
    from tenants.invitations import sign_up_with_invitation
    from tenants.usernames import UsernameNotAllowed

    make_operator("alice")
    invitation, _ = invite(personas, "fresh-person@example.com")
    with pytest.raises(UsernameNotAllowed):
        sign_up_with_invitation(
            invitation, username="a1ice", password="long-enough-pass-9", acting=Acting.platform("invitation sign-up")
        )
    assert not get_user_model().objects.filter(email="fresh-person@example.com").exists()


@pytest.mark.parametrize("invited", ["newbie@example.com", "NewBie@Example.COM"])
def test_sign_up_for_an_address_that_has_an_account_says_to_sign_in_and_spends_the_link(
    client: Any, personas: Any, invited: str
) -> None:
    make_operator("newbie")  # newbie@example.com
    invitation, link = invite(personas, invited)
    # Only trying tells: the page looks the same for an address with and without an account.
    _, other_link = invite(personas, "nobody-yet@example.com")
    page = client.get(f"{link}sign-up/").content.decode()
    other = client.get(f"{other_link}sign-up/").content.decode()

    def shape(html: str, email: str, url: str) -> str:
        return re.sub(r"[A-Za-z0-9]{64}", "TOKEN", html.replace(email, "X").replace(url, "L"))  # CSRF tokens

    assert shape(page, invited, link) == shape(other, "nobody-yet@example.com", other_link)

    post = {"username": "newbie2", "password1": "long-enough-pass-9", "password2": "long-enough-pass-9"}
    response = client.post(f"{link}sign-up/", post)
    assert response.status_code == 200
    text = response.content.decode()
    assert f"There is already an account for {invited}" in text and "this link no longer works" in text
    assert get_user_model().objects.filter(email__iexact=invited).count() == 1
    assert not get_user_model().objects.filter(username="newbie2").exists()
    # The answer cost the invitation, and the tenant's audit log shows why.
    invitation.refresh_from_db()
    assert not invitation.is_pending
    event = AuditEvent.objects.get(type="member.invitation_revoked", target=invitation.email)
    assert event.actor_kind == "system" and event.after is not None
    assert "already has an account" in event.after["reason"]
    assert "no longer valid" in client.get(link).content.decode()


def test_the_sign_up_service_refuses_a_second_account_for_an_address(personas: Any) -> None:
    from tenants.invitations import AccountExists, sign_up_with_invitation

    make_operator("newbie")
    invitation, _ = invite(personas, "NEWBIE@example.com")
    with pytest.raises(AccountExists):
        sign_up_with_invitation(
            invitation, username="newbie2", password="long-enough-pass-9", acting=Acting.platform("invitation sign-up")
        )
    assert get_user_model().objects.filter(email__iexact="newbie@example.com").count() == 1
