from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


EVENT_TYPES = [
    "flow.action_attached",
    "flow.action_detached",
    "flow.action_updated",
    "flow.action_executed",
    "flow.action_published",
    # Not in contract §7's table, but writes that change what sign-ins do: a new flow, and a flow
    # switched on or off (a disabled flow runs none of its actions).
    "flow.created",
    "flow.enabled",
    "flow.disabled",
    # Contract §14: an owner deleted a flow or a custom action (its history stays).
    "flow.deleted",
    "action.created",
    "action.version_saved",
    "action.deleted",
    # Contract §11: a custom action's secret set (added or replaced) or deleted; names, never values.
    "action.secret_set",
    "action.secret_deleted",
    "api_token.created",
    "api_token.revoked",
    "member.added",
    "member.role_changed",
    "member.removed",
    # Invitations (tenants.services): an email address invited with a role, or the invitation
    # withdrawn; its acceptance is a `member.added` naming the invitation.
    "member.invited",
    "member.invitation_revoked",
    # Retention (audit_app.retention): the policy changed, or the oldest events were purged.
    "audit.retention_changed",
    "audit.purged",
]

ACTOR_KINDS = [("user", "User"), ("token", "API token"), ("system", "System")]


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only and cannot be updated.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only and cannot be deleted.")

    def for_tenant(self, tenant: Any) -> AuditEventQuerySet:
        return self.filter(tenant=tenant)


class AuditEvent(models.Model):
    """One entry of a tenant's audit history (contract §7). Written only by `services.record`."""

    # No single-column indexes here: every query is per tenant, and the composite indexes below
    # (tenant first) serve those and the foreign key; each extra index is paid on every sign-in.
    occurred_at = models.DateTimeField(default=timezone.now)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="audit_events", db_index=False)
    type = models.CharField(max_length=40, choices=[(t, t) for t in EVENT_TYPES])

    actor_kind = models.CharField(max_length=10, choices=ACTOR_KINDS)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)

    action_slug = models.CharField(max_length=80, blank=True)
    action_version = models.CharField(max_length=40, blank=True)
    flow_slug = models.CharField(max_length=80, blank=True)
    flow_revision = models.PositiveIntegerField(null=True, blank=True)
    trigger = models.CharField(max_length=60, blank=True)
    # For events about something other than an action or flow (a member, a token).
    target = models.CharField(max_length=150, blank=True)

    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    transaction_id = models.CharField(max_length=64, blank=True)

    # Tamper evidence (audit_app.chain): the tenant's events form a hash chain in `seq` order.
    seq = models.PositiveBigIntegerField(default=0)
    prev_hash = models.CharField(max_length=64, default="")
    hash = models.CharField(max_length=64, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-occurred_at", "-id"], name="audit_tenant_time"),
            models.Index(fields=["tenant", "type", "-occurred_at"], name="audit_tenant_type_time"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="audit_tenant_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.type}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # An integrity guard, not business logic: an existing row is never written again.
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("Audit events are append-only and cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only and cannot be deleted.")


class AuditChainHead(models.Model):
    """The end of a tenant's audit hash chain. Writers lock this row, so each tenant's chain stays
    linear under concurrency, and verification can tell when the chain's tail was removed."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.PROTECT, primary_key=True, related_name="audit_chain_head"
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")
    # Where the chain starts after a retention purge removed events 1..anchored_seq: the first kept
    # event's prev_hash must equal anchored_hash. 0 and "" until the first purge.
    anchored_seq = models.PositiveBigIntegerField(default=0)
    anchored_hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"chain head #{self.last_seq}"


DEFAULT_RETENTION_DAYS = 365
# A quarter at least: a shorter retention would let someone erase the trail of a recent change.
MIN_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 3650


class AuditRetention(models.Model):
    """How long a tenant keeps its audit events; `days` None keeps them forever. A tenant without
    a row keeps DEFAULT_RETENTION_DAYS. Purges and policy changes lock this row, so a tenant's
    purges run one at a time and never under a policy that is changing."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.PROTECT, primary_key=True, related_name="audit_retention"
    )
    days = models.PositiveIntegerField(null=True, blank=True, default=DEFAULT_RETENTION_DAYS)

    def __str__(self) -> str:
        return "kept forever" if self.days is None else f"kept {self.days} days"


SECURITY_EVENT_KINDS = [
    "console.sign_in_failed",
    "console.cross_tenant_refused",
    "api.token_rejected",
]


class SecurityEvent(models.Model):
    """An entry of the platform security log (staff only, audit_app.security): failed sign-ins,
    refused requests for another tenant, rejected API tokens. Deliberately no tenant foreign key:
    these never belong to a tenant's audit (a tenant must not learn who probed it, nor see another
    tenant's slug), so the slug that was asked for is kept as text."""

    occurred_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40, choices=[(k, k) for k in SECURITY_EVENT_KINDS])
    username = models.CharField(max_length=150, blank=True)
    # Not a foreign key: the log outlives deleted users, and a failed sign-in may name nobody.
    user_id = models.PositiveBigIntegerField(null=True, blank=True)
    tenant_slug = models.CharField(max_length=80, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["kind", "-id"], name="security_kind_id"),
            models.Index(fields=["username", "-id"], name="security_username_id"),
            models.Index(fields=["ip", "-id"], name="security_ip_id"),
            models.Index(fields=["occurred_at"], name="security_occurred_at"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.kind}"
