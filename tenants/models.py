from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from tenants.roles import ROLE_CHOICES, Role

TENANT_SLUG_RE = r"^[a-z0-9-]{2,40}$"


class TenantQuerySet(models.QuerySet["Tenant"]):
    def for_member(self, user: Any) -> TenantQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Tenant(models.Model):
    slug = models.CharField(
        max_length=40,
        unique=True,
        validators=[RegexValidator(TENANT_SLUG_RE, "2–40 lowercase letters, digits or hyphens.")],
    )
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ROLE_CHOICES)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_membership_per_tenant")]
        ordering = ["tenant", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} as {self.role}"

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class TenantRoleGroup(models.Model):
    """The Django group that holds one role's object permissions on one tenant's objects."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="role_groups")
    role = models.CharField(max_length=10, choices=ROLE_CHOICES)
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="tenant_role")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "role"], name="one_group_per_tenant_role")]

    def __str__(self) -> str:
        return f"{self.tenant} {self.role}"


API_SCOPES = [
    "actions:read",
    "actions:write",
    "actions:publish",
    "flows:read",
    "flows:write",
    "audit:read",
    "runtime:execute",
]
TOKEN_PREFIX = "acx"


def hash_token_secret(secret: str) -> str:
    # Tokens are 256-bit random values, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A management-API credential of one tenant. Only a hash of the secret is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @staticmethod
    def new_key() -> tuple[str, str, str]:
        """A fresh (key_id, secret, full token string) triple; the token is shown once."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        return key_id, secret, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    @property
    def status(self) -> str:
        """ "revoked", "expired" or "active": the same rule as ApiTokenQuerySet.usable()."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


IDEMPOTENCY_KEY_LIFETIME_HOURS = 24


class IdempotentRequest(models.Model):
    """A POST answered under an `Idempotency-Key`: a retry with the same key (within 24 h, in the
    same tenant) and the same request gets this stored answer instead of doing the work again."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and canonical body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    # Null only inside the transaction that claims the key and answers it, so never seen by others.
    status = models.PositiveSmallIntegerField(null=True)
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="one_answer_per_idempotency_key")]
        indexes = [models.Index(fields=["tenant", "created_at"], name="idempotency_key_expiry")]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.key} → {self.status}"


INVITATION_LIFETIME_DAYS = 7


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self) -> InvitationQuerySet:
        """Invitations that can still be accepted: not used, not revoked, not expired."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """An email address invited into a tenant with a role. The link's secret is shown once to the
    inviting admin; only its hash is stored. Nothing here says whether the address has an account:
    that is found out only when someone signs in (or up) through the link."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=ROLE_CHOICES)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="sent_invitations"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["tenant", "expires_at"], name="invitation_tenant_expiry"),
            # The per-admin rate limit counts an inviter's recent invitations.
            models.Index(fields=["invited_by", "created_at"], name="invitation_inviter_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant_id} as {self.role}"

    @staticmethod
    def new_token() -> str:
        """A fresh link secret: 256 random bits, so a plain hash is enough to store it."""
        return secrets.token_urlsafe(32)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def is_pending(self) -> bool:
        """The same rule as InvitationQuerySet.pending()."""
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()
