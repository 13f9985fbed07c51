from __future__ import annotations

import uuid
from typing import Any, cast

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from actions_app.triggers import ALL_TRIGGERS, FLOW_KINDS


class OnError(models.TextChoices):
    BLOCK = "block", "block (fail closed)"
    CONTINUE = "continue", "continue (fail open)"


class FlowQuerySet(models.QuerySet["Flow"]):
    def for_tenant(self, tenant: Any) -> FlowQuerySet:
        return self.filter(tenant=tenant)


_FlowManagerBase = models.Manager.from_queryset(FlowQuerySet)


class LiveFlowManager(_FlowManagerBase):
    """Flows that are not deleted: every list, lookup and API sees only these. Deleted rows stay
    (through `all_objects` and foreign keys) so revisions and executions keep their subject."""

    def get_queryset(self) -> FlowQuerySet:  # type: ignore[override]
        return cast(FlowQuerySet, super().get_queryset().filter(deleted_at__isnull=True))


class Flow(models.Model):
    """A tenant's sequence of trigger slots for one kind of event (contract §2)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="flows")
    slug = models.CharField(
        max_length=80,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]{0,78}[a-z0-9]$", "Lowercase letters, digits, hyphens.")],
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=[(k, k) for k in FLOW_KINDS])
    enabled = models.BooleanField(default=True)
    is_system = models.BooleanField(
        default=False, help_text="The tenant's built-in flow of this kind; cannot be deleted."
    )
    current_revision = models.ForeignKey(
        "FlowRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Set by flows_app.deleting.delete_flow (contract §14); the slug is then free again.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = LiveFlowManager()
    all_objects = FlowQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "slug"],
                condition=models.Q(deleted_at__isnull=True),
                name="flow_slug_unique_in_tenant",
            )
        ]
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class FlowRevision(models.Model):
    """An immutable save of a flow; its bindings are the whole configuration at that point."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "number"], name="revision_number_unique_per_flow")]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"{self.flow.slug} r{self.number}"


# Triggers in the order a flow reaches its slots (contract §2), for ORDER BY.
_SLOT_ORDER = models.Case(
    *[models.When(trigger=trigger, then=models.Value(index)) for index, trigger in enumerate(ALL_TRIGGERS)]
)


class BindingQuerySet(models.QuerySet["Binding"]):
    def current(self) -> BindingQuerySet:
        """Bindings in the revision each flow currently runs (what "attached" means)."""
        return self.filter(revision=F("revision__flow__current_revision"), revision__flow__deleted_at__isnull=True)

    def where_attached(self, action: Any, flows: models.QuerySet[Flow]) -> BindingQuerySet:
        """`action`'s current bindings in `flows` (those the operator may see), in flow order."""
        return (
            self.current()
            .filter(action=action, revision__flow__in=flows)
            .select_related("revision__flow", "pinned_version")
            .order_by("revision__flow__name", _SLOT_ORDER, "position")
        )


class Binding(models.Model):
    """One action version attached to one slot of a flow revision (contract §1)."""

    revision = models.ForeignKey(FlowRevision, on_delete=models.CASCADE, related_name="bindings")
    # The same attachment across revisions: audit diffs and rate-limit counters follow it.
    key = models.UUIDField(default=uuid.uuid4)
    trigger = models.CharField(max_length=60, choices=[(t, t) for t in ALL_TRIGGERS])
    position = models.PositiveIntegerField()
    action = models.ForeignKey("actions_app.Action", on_delete=models.PROTECT, related_name="bindings")
    pinned_version = models.ForeignKey("actions_app.ActionVersion", on_delete=models.PROTECT, related_name="bindings")
    config = models.JSONField(default=dict)
    # write-only config values, encrypted at rest; never rendered back.
    encrypted_secrets = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    on_error = models.CharField(max_length=10, choices=OnError.choices, default=OnError.BLOCK)
    timeout_ms = models.PositiveIntegerField(default=1000, validators=[MinValueValidator(50), MaxValueValidator(5000)])

    objects = BindingQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["revision", "trigger", "position"], name="one_binding_per_position")
        ]
        ordering = ["trigger", "position"]

    def __str__(self) -> str:
        return f"{self.trigger}#{self.position} {self.pinned_version}"


class FlowUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Flow, on_delete=models.CASCADE)


class FlowGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Flow, on_delete=models.CASCADE)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERED = "delivered", "delivered"
    FAILED = "failed", "failed (gave up)"


class WebhookDelivery(models.Model):
    """One outbound POST of webhook-emit or slack-notify, kept until delivered or given up.

    The flow run only inserts the row (the outbox); a worker sends it, so sign-ins never wait
    for a third-party server."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="webhook_deliveries")
    # Served by the delivery_log index (binding, created_at).
    binding = models.ForeignKey(
        Binding, null=True, on_delete=models.SET_NULL, related_name="deliveries", db_index=False
    )
    action_slug = models.CharField(max_length=80)
    flow_slug = models.CharField(max_length=80)
    trigger = models.CharField(max_length=60)
    transaction_id = models.CharField(max_length=64, blank=True)
    # The target URL may itself be a secret (Slack's webhook URL): stored encrypted like secrets.
    encrypted_url = models.TextField()
    url_display = models.CharField(max_length=300, help_text="Scheme and host only, for the delivery log.")
    encrypted_signing_secret = models.TextField(blank=True)
    body = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["binding", "-created_at"], name="delivery_log"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action_slug} → {self.url_display} ({self.status})"


class FlowTransaction(models.Model):
    """One sign-in / registration / reset attempt: it keeps the revision its first trigger ran."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    # Served by transaction_unique_per_flow (flow, transaction_id).
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="transactions", db_index=False)
    transaction_id = models.CharField(max_length=64)
    revision = models.ForeignKey(FlowRevision, on_delete=models.PROTECT, related_name="+")
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "transaction_id"], name="transaction_unique_per_flow")]

    def __str__(self) -> str:
        return f"{self.flow.slug}:{self.transaction_id}"


class ActionExecution(models.Model):
    """One action run inside a flow run (contract §6), with its input as seen (secrets masked)."""

    # The foreign keys are served by the composite indexes below (each leads with its column);
    # every extra index is paid on every sign-in.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="executions", db_index=False)
    revision_number = models.PositiveIntegerField()
    transaction_id = models.CharField(max_length=64)
    trigger = models.CharField(max_length=60)
    binding_key = models.UUIDField()
    action = models.ForeignKey(
        "actions_app.Action", on_delete=models.CASCADE, related_name="executions", db_index=False
    )
    action_version = models.CharField(max_length=40)
    position = models.PositiveIntegerField()
    # continue / block / demand_mfa / redirect, or error when the execution failed.
    outcome = models.CharField(max_length=12)
    result = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=30, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    on_error_applied = models.CharField(max_length=10, blank=True)
    duration_ms = models.FloatField()
    logs = models.JSONField(default=list)
    masked_input = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-occurred_at"], name="execution_tenant_time"),
            models.Index(fields=["action", "-occurred_at"], name="execution_action_time"),
            models.Index(fields=["flow", "-occurred_at"], name="execution_flow_time"),
            models.Index(fields=["flow", "transaction_id"], name="execution_transaction"),
        ]
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.trigger} {self.action_id}@{self.action_version} → {self.outcome}"


class PendingRunRecordQuerySet(models.QuerySet["PendingRunRecord"]):
    def waiting(self) -> PendingRunRecordQuerySet:
        """Not settled yet and not set aside."""
        return self.filter(problem="")


class PendingRunRecord(models.Model):
    """What one flow run did, as the sign-in left it: a single row, turned into ActionExecution
    rows and `flow.action_executed` audit events by `flows_app.run_records` (see why there).
    Rows live until they are settled, normally well under a second."""

    # Served by pending_run_per_tenant (tenant, id).
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    # JSON text, not a JSON column: the database never looks inside, so it need not parse it.
    payload = models.TextField()
    # Why this record could not be settled (set aside so the tenant's other runs go on); empty
    # while it waits. Set-aside records stay here, and are logged, for someone to look at.
    problem = models.TextField(blank=True)

    objects = PendingRunRecordQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "id"], name="pending_run_per_tenant")]

    def __str__(self) -> str:
        return f"pending run record {self.pk} of tenant {self.tenant_id}"
