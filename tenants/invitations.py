"""Invitations to join a tenant: sending, revoking, accepting, and signing up through one.

Adding someone by email never tells the admin whether that address has an account or is a
member already: inviting looks nothing up, and every invitation is answered, listed and audited
alike. Who the person is comes out only when they open the link and sign in or sign up. Each write
records its audit event in the same transaction as the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tenants.acting import Acting, Actor
from tenants.audit_hooks import record_event
from tenants.models import INVITATION_LIFETIME_DAYS, Invitation, Membership, Tenant, hash_token_secret
from tenants.roles import Role
from tenants.services import (
    _acting_role_now,
    _create_membership,
    _iso,
    check_member_change,
    invitation_snapshot,
    lock_tenant,
)
from tenants.usernames import check_new_username

INVITATIONS_PER_ADMIN_PER_HOUR = 50
invitation_log = logging.getLogger("tenants.invitations")


class InvitationError(ValueError):
    """An invitation that cannot be sent or accepted as asked."""


class InvitationRateLimited(InvitationError):
    """The inviting operator sent too many invitations within the last hour."""


class InvitationNotValid(InvitationError):
    """Unknown, expired, revoked or already used: one error, so no answer tells these apart."""


class InvitationForAnotherAddress(InvitationError):
    """The signed-in operator's email is not the invited address."""


class AlreadyMember(InvitationError):
    """The invited operator is a member of the tenant already; accepting changes nothing."""


class UsernameTaken(InvitationError):
    """Someone took the username between the form's check and the insert."""


class AccountExists(InvitationError):
    """The invited address has an account already: its owner signs in and accepts with it."""

    def __init__(self, email: str) -> None:
        super().__init__(f"There is already an account for {email}. Sign in with it to accept the invitation.")


def invitation_lifetime() -> timedelta:
    """How long an invitation link works: INVITATION_LIFETIME_DAYS (7 unless configured)."""
    return timedelta(days=getattr(settings, "INVITATION_LIFETIME_DAYS", INVITATION_LIFETIME_DAYS))


def invitations_per_hour() -> int:
    """How many invitations one operator may send per hour: INVITATIONS_PER_ADMIN_PER_HOUR (50)."""
    return int(getattr(settings, "INVITATIONS_PER_ADMIN_PER_HOUR", INVITATIONS_PER_ADMIN_PER_HOUR))


def _check_invitation_rate(invited_by: Any, now: datetime) -> None:
    if invited_by is None:
        return
    limit = invitations_per_hour()
    recent = list(
        Invitation.objects.filter(invited_by=invited_by, created_at__gt=now - timedelta(hours=1))
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        next_at = recent[-1] + timedelta(hours=1)
        raise InvitationRateLimited(
            f"You have sent {limit} invitations in the last hour, the most allowed; "
            f"you can send the next one at {next_at:%H:%M} UTC."
        )


def invite_member(
    tenant: Tenant,
    email: str,
    role: Role,
    *,
    link_for: Callable[[str], str],
    acting: Acting,
) -> tuple[Invitation, str]:
    """Invite `email` into `tenant` with `role`; returns the invitation and its link, which is
    never retrievable again (only a hash of its secret is kept). There is no mail server: the
    link is for the inviting admin to pass on, and is written to the log once the invitation is
    stored. An earlier pending invitation of the same address is revoked (one working link per
    address). `acting.role` as in `add_member`, the inviting operator is `acting.user` (none for
    the platform); `link_for` turns the secret into the URL."""
    email = email.strip()
    invited_by = acting.user
    now = timezone.now()
    token = Invitation.new_token()
    with transaction.atomic():
        lock_tenant(tenant)
        check_member_change(_acting_role_now(tenant, acting), current=None, new=role)
        _check_invitation_rate(invited_by, now)
        earlier_pending = (
            Invitation.objects.pending()
            .select_for_update(of=("self",))
            .select_related("tenant", "invited_by")
            .filter(tenant=tenant, email__iexact=email)
        )
        for earlier in earlier_pending:
            _revoke(earlier, acting=acting, reason="replaced by a new invitation")
        invitation = Invitation.objects.create(
            tenant=tenant,
            email=email,
            role=role.value,
            token_hash=hash_token_secret(token),
            invited_by=invited_by,
            created_at=now,
            expires_at=now + invitation_lifetime(),
        )
        record_event(
            tenant=tenant,
            event_type="member.invited",
            actor=acting.actor,
            meta=acting.meta,
            target=email,
            after=invitation_snapshot(invitation),
        )
        link = link_for(token)
        transaction.on_commit(
            lambda: invitation_log.warning(
                "Invitation to %s as %s in tenant %s (no mail is sent; pass this link on): %s expires %s",
                email,
                role.value,
                tenant.slug,
                link,
                _iso(invitation.expires_at),
            )
        )
    return invitation, link


def _revoke(invitation: Invitation, *, acting: Acting, reason: str = "") -> None:
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    after = {"reason": reason} if reason else None
    record_event(
        tenant=invitation.tenant,
        event_type="member.invitation_revoked",
        actor=acting.actor,
        meta=acting.meta,
        target=invitation.email,
        before=invitation_snapshot(invitation),
        after=after,
    )


def revoke_invitation(invitation: Invitation, *, acting: Acting) -> Invitation:
    """Stop an invitation's link from working. Revoking one that is no longer pending changes
    and records nothing. Admins revoke invitations below owner, as they grant only those."""
    with transaction.atomic():
        lock_tenant(invitation.tenant)
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("tenant", "invited_by")
            .get(pk=invitation.pk)
        )
        check_member_change(_acting_role_now(invitation.tenant, acting), current=None, new=invitation.role_enum)
        if invitation.is_pending:
            _revoke(invitation, acting=acting)
    return invitation


def pending_invitation(token: str) -> Invitation:
    """The pending invitation whose link carries `token`, or InvitationNotValid."""
    invitation = (
        Invitation.objects.pending()
        .select_related("tenant", "invited_by")
        .filter(token_hash=hash_token_secret(token))
        .first()
    )
    if invitation is None:
        raise InvitationNotValid("This invitation is no longer valid.")
    return invitation


def is_invited_address(invitation: Invitation, user: Any) -> bool:
    """Whether the operator's account email is the invited address (case aside)."""
    return bool(user.email) and user.email.strip().casefold() == invitation.email.strip().casefold()


def accept_invitation(invitation: Invitation, *, acting: Acting) -> Membership:
    """Make the acting operator (`acting.user`), whose email is the invited address, a member with
    the invitation's role and use the invitation up. The role was checked against the inviting
    admin's when they sent it. An operator who is a member already gets AlreadyMember, and
    nothing changes."""
    user = acting.user
    with transaction.atomic():
        lock_tenant(invitation.tenant)
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("tenant", "invited_by")
            .get(pk=invitation.pk)
        )
        if not invitation.is_pending:
            raise InvitationNotValid("This invitation is no longer valid.")
        if not is_invited_address(invitation, user):
            raise InvitationForAnotherAddress(f"This invitation is for {invitation.email}.")
        current = Membership.objects.filter(tenant=invitation.tenant, user=user).first()
        if current is not None:
            raise AlreadyMember(
                f"You are already a member of {invitation.tenant.name} ({current.role}); nothing changed."
            )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        return _create_membership(invitation.tenant, user, invitation.role_enum, acting=acting, invitation=invitation)


def sign_up_with_invitation(
    invitation: Invitation, *, username: str, password: str, acting: Acting
) -> tuple[Any, Membership]:
    """Create an operator account for the invited address and accept the invitation with it, in
    one transaction: an invitation that stopped being valid meanwhile leaves no account behind.
    The account's email is the invited one, never typed. Refuses an address that has an account
    already (AccountExists: one account per address) and a username a new account may not have
    (UsernameNotAllowed, tenants.usernames). `acting` is the visitor's request (Acting.for_visitor);
    the new account then accepts as itself, from that same request."""
    user_model = get_user_model()
    if account_exists_for(invitation.email):
        _use_up_for_existing_account(invitation, acting)
        raise AccountExists(invitation.email)
    try:
        with transaction.atomic():
            _serialise_sign_ups()
            if account_exists_for(invitation.email):
                raise AccountExists(invitation.email)
            check_new_username(username)
            user = user_model._default_manager.create_user(username, email=invitation.email, password=password)
            membership = accept_invitation(invitation, acting=Acting(Actor.for_user(user), acting.meta, user=user))
    except IntegrityError as error:
        raise UsernameTaken("That username is taken; choose another.") from error
    return user, membership


INVITATION_SPENT_ON_EXISTING_ACCOUNT = "a sign-up was tried for an address that already has an account"


def _use_up_for_existing_account(invitation: Invitation, acting: Acting) -> None:
    """Revoke, audited, an invitation through which a sign-up was tried for an address that has an
    account. Its holder is told the address has one, so the admin who made the link (and holds it
    too) could otherwise learn that of any address for free and without a trace; this way each
    such answer costs an invitation and shows in the tenant's audit log."""
    with transaction.atomic():
        lock_tenant(invitation.tenant)
        current = Invitation.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=invitation.pk)
        if current.is_pending:
            _revoke(current, acting=acting, reason=INVITATION_SPENT_ON_EXISTING_ACCOUNT)


def account_exists_for(email: str) -> bool:
    """Whether an operator account has `email` (case aside), as is_invited_address compares."""
    return get_user_model()._default_manager.filter(email__iexact=email.strip()).exists()


# Any constant the other users of advisory locks do not take.
_SIGN_UP_LOCK = 0x5167_6E55


def _serialise_sign_ups() -> None:
    """Two sign-ups at once could each pass the look-alike and one-account-per-address checks,
    which no unique index can express; on PostgreSQL they take turns until the caller's transaction
    ends (SQLite runs one writing transaction at a time anyway). Sign-ups are rare."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SIGN_UP_LOCK])
