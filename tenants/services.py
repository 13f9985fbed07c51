"""Writes on tenants, memberships and API tokens (invitations are in tenants.invitations). Each one
records its audit event in the same transaction as the change."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from tenants.acting import Acting, backdated
from tenants.audit_hooks import record_event
from tenants.models import (
    API_SCOPES,
    ApiToken,
    Invitation,
    Membership,
    Tenant,
    hash_token_secret,
)
from tenants.permissions import ensure_role_groups
from tenants.roles import ROLE_ORDER, Role


class MembershipError(ValueError):
    """A membership change that would leave the tenant in a bad state."""


class MemberChangeNotAllowed(MembershipError):
    """The acting operator's role does not allow this membership change."""


class TokenError(ValueError):
    pass


def _member_snapshot(membership: Membership) -> dict[str, Any]:
    return {"user": membership.user.get_username(), "role": membership.role}


def roles_grantable_by(acting_role: Role | None) -> list[Role]:
    """The roles an operator may give others: admins up to admin, owners every role."""
    if acting_role is None or not acting_role.includes(Role.ADMIN):
        return []
    return [role for role in ROLE_ORDER if acting_role == Role.OWNER or role != Role.OWNER]


def check_member_change(acting_role: Role | None, *, current: Role | None, new: Role | None) -> None:
    """Admins manage members below owner; only owners grant, change or remove the owner role.

    `current` is the member's role before the change (None when adding), `new` the role after
    it (None when removing). `acting_role` None is the platform itself (seed data, commands).
    """
    if acting_role is None:
        return
    if not acting_role.includes(Role.ADMIN):
        raise MemberChangeNotAllowed("Only admins and owners can manage members.")
    if acting_role != Role.OWNER and current == Role.OWNER:
        raise MemberChangeNotAllowed("Only an owner can change or remove another owner.")
    if acting_role != Role.OWNER and new == Role.OWNER:
        raise MemberChangeNotAllowed("Only an owner can make someone an owner.")


def lock_tenant(tenant: Tenant) -> None:
    """Queue tenant-wide changes behind this row lock until the caller's transaction ends: two
    owners demoting each other at the same moment cannot both pass the "one owner left" check,
    and a retention purge cannot run on a period that is being changed. NO KEY UPDATE: rows that
    only reference the tenant (a flow run's records) are still written meanwhile."""
    # Only the key: the lock is the point, and a purge must still lock a tenant whose name is corrupt.
    Tenant.objects.select_for_update(no_key=True).filter(pk=tenant.pk).values_list("pk", flat=True).first()


def _acting_role_now(tenant: Tenant, acting: Acting) -> Role | None:
    """The acting operator's role as it is under the tenant lock, not as it was when their request
    began: an owner demoted a moment ago must not still grant the owner role. None: the platform."""
    if acting.role is None or acting.actor.kind != "user":
        return acting.role
    current = Membership.objects.filter(tenant=tenant, user_id=acting.actor.id).values_list("role", flat=True).first()
    if current is None:
        raise MemberChangeNotAllowed("You are no longer a member of this tenant.")
    return Role(current)


def add_member(
    tenant: Tenant,
    user: Any,
    role: Role,
    *,
    acting: Acting,
) -> Membership:
    """Make `user` a member of `tenant` with `role` and put them in that role's group.
    `acting.role` is the role of the operator doing it (None: the platform itself), checked
    again under the tenant lock."""
    with transaction.atomic():
        lock_tenant(tenant)
        check_member_change(_acting_role_now(tenant, acting), current=None, new=role)
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise MembershipError(f"{user.get_username()} is already a member of {tenant.slug}.")
        return _create_membership(tenant, user, role, acting=acting)


def _create_membership(
    tenant: Tenant,
    user: Any,
    role: Role,
    *,
    acting: Acting,
    invitation: Invitation | None = None,
) -> Membership:
    """The membership row, its role group and its `member.added` event; the caller holds the
    tenant lock and has checked who may do it."""
    membership = Membership.objects.create(tenant=tenant, user=user, role=role.value, **backdated())
    user.groups.add(ensure_role_groups(tenant)[role])
    after = _member_snapshot(membership)
    if invitation is not None:
        after["invitation"] = invitation_snapshot(invitation)
    record_event(
        tenant=tenant,
        event_type="member.added",
        actor=acting.actor,
        meta=acting.meta,
        target=user.get_username(),
        after=after,
    )
    return membership


def _owner_count(tenant: Tenant) -> int:
    return Membership.objects.filter(tenant=tenant, role=Role.OWNER.value).count()


def change_member_role(
    membership: Membership,
    role: Role,
    *,
    acting: Acting,
) -> Membership:
    """Move a member to another role; the last owner cannot be demoted. `acting.role` as in
    `add_member`; the check runs on the locked row, so a concurrent change cannot slip past it."""
    with transaction.atomic():
        lock_tenant(membership.tenant)
        membership = (
            Membership.objects.select_for_update(no_key=True, of=("self",))
            .select_related("user", "tenant")
            .get(pk=membership.pk)
        )
        check_member_change(_acting_role_now(membership.tenant, acting), current=membership.role_enum, new=role)
        if membership.role == role.value:
            return membership
        if membership.role == Role.OWNER.value and _owner_count(membership.tenant) <= 1:
            raise MembershipError("A tenant needs at least one owner: make someone else owner first.")
        before = _member_snapshot(membership)
        groups = ensure_role_groups(membership.tenant)
        membership.user.groups.remove(groups[membership.role_enum])
        membership.role = role.value
        membership.save(update_fields=["role"])
        membership.user.groups.add(groups[role])
        record_event(
            tenant=membership.tenant,
            event_type="member.role_changed",
            actor=acting.actor,
            meta=acting.meta,
            target=membership.user.get_username(),
            before=before,
            after=_member_snapshot(membership),
        )
    return membership


def remove_member(membership: Membership, *, acting: Acting) -> None:
    """End a membership; the last owner cannot be removed. `acting.role` as in `add_member`."""
    with transaction.atomic():
        lock_tenant(membership.tenant)
        membership = (
            Membership.objects.select_for_update(no_key=True, of=("self",))
            .select_related("user", "tenant")
            .get(pk=membership.pk)
        )
        check_member_change(_acting_role_now(membership.tenant, acting), current=membership.role_enum, new=None)
        if membership.role == Role.OWNER.value and _owner_count(membership.tenant) <= 1:
            raise MembershipError("A tenant needs at least one owner: the last owner cannot be removed.")
        before = _member_snapshot(membership)
        membership.user.groups.remove(ensure_role_groups(membership.tenant)[membership.role_enum])
        membership.delete()
        record_event(
            tenant=membership.tenant,
            event_type="member.removed",
            actor=acting.actor,
            meta=acting.meta,
            target=before["user"],
            before=before,
        )


def create_api_token(
    tenant: Tenant,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    acting: Acting,
) -> tuple[ApiToken, str]:
    """Create a token; returns it and the secret string, which is never retrievable again. Its
    creator is the acting operator (none when the platform makes it)."""
    name = name.strip()
    if not name:
        raise TokenError("Give the token a name.")
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown:
        raise TokenError(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(API_SCOPES)}.")
    if not scopes:
        raise TokenError("Choose at least one scope.")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("The expiry must be in the future.")
    key_id, secret, full_token = ApiToken.new_key()
    with transaction.atomic():
        token = ApiToken.objects.create(
            tenant=tenant,
            name=name,
            key_id=key_id,
            secret_hash=hash_token_secret(secret),
            scopes=sorted(set(scopes), key=API_SCOPES.index),
            created_by=acting.user,
            expires_at=expires_at,
        )
        record_event(
            tenant=tenant,
            event_type="api_token.created",
            actor=acting.actor,
            meta=acting.meta,
            target=f"{name} ({key_id})",
            after={"name": name, "key_id": key_id, "scopes": token.scopes, "expires_at": _iso(expires_at)},
        )
    return token, full_token


def revoke_api_token(token: ApiToken, *, acting: Acting) -> ApiToken:
    """Stop a token from working at once; revoking it again changes nothing and records nothing."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record_event(
            tenant=token.tenant,
            event_type="api_token.revoked",
            actor=acting.actor,
            meta=acting.meta,
            target=f"{token.name} ({token.key_id})",
            before={"name": token.name, "key_id": token.key_id, "scopes": token.scopes},
        )
    return token


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def authenticate_token(raw: str) -> ApiToken | None:
    """The usable token for a presented `acx_<id>_<secret>` string, or None."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != "acx":
        return None
    token = ApiToken.objects.usable().select_related("tenant").filter(key_id=parts[1]).first()
    if token is None or not hmac.compare_digest(token.secret_hash, hash_token_secret(parts[2])):
        return None
    now = timezone.now()
    # Throttle the write: last-used precision of a minute is plenty and spares a row update per call.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def invitation_snapshot(invitation: Invitation) -> dict[str, Any]:
    """What audit events show of an invitation (never its token)."""
    return {
        "invitation": invitation.pk,
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": _iso(invitation.expires_at),
        "invited_by": invitation.invited_by.get_username() if invitation.invited_by else None,
    }
