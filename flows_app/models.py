from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from flows_app.triggers import ALL_TRIGGERS, FLOW_KINDS


class OnError(models.TextChoices):
    BLOCK = "block", "block (fail closed)"
    CONTINUE = "continue", "continue (fail open)"


class FlowQuerySet(models.QuerySet["Flow"]):
    def for_tenant(self, tenant: Any) -> FlowQuerySet:
        return self.filter(tenant=tenant)


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

    objects = FlowQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="flow_slug_unique_in_tenant")]
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


class BindingQuerySet(models.QuerySet["Binding"]):
    def current(self) -> BindingQuerySet:
        """Bindings in the revision each flow currently runs (what "attached" means)."""
        return self.filter(revision=F("revision__flow__current_revision"))


class Binding(models.Model):
    """One action version attached to one slot of a flow revision (contract §1)."""

    revision = models.ForeignKey(FlowRevision, on_delete=models.CASCADE, related_name="bindings")
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
