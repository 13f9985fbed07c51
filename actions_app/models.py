from __future__ import annotations

import hashlib
import json
from typing import Any, cast

import semver
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

ACTION_SLUG_RE = r"^[a-z0-9][a-z0-9-]{0,78}[a-z0-9]$"


class ActionKind(models.TextChoices):
    TEMPLATE = "template", "template"
    CUSTOM = "custom", "custom"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    PUBLISHED = "published", "published"


class ActionQuerySet(models.QuerySet["Action"]):
    def for_tenant(self, tenant: Any) -> ActionQuerySet:
        return self.filter(tenant=tenant)

    def with_latest_version(self) -> ActionQuerySet:
        """Annotate the id and label of the highest semver version, in the same query."""
        latest = ActionVersion.objects.filter(action=OuterRef("pk")).order_by("-major", "-minor", "-patch", "-id")
        return self.annotate(
            latest_version_id=Subquery(latest.values("id")[:1]),
            latest_version_label=Subquery(latest.values("version")[:1]),
        )


_ActionManagerBase = models.Manager.from_queryset(ActionQuerySet)


class LiveActionManager(_ActionManagerBase):
    """Actions that are not deleted: every list, lookup, offer and API sees only these. Deleted
    rows stay (through `all_objects` and foreign keys) so executions and versions keep their subject."""

    def get_queryset(self) -> ActionQuerySet:  # type: ignore[override]
        return cast(ActionQuerySet, super().get_queryset().filter(deleted_at__isnull=True))


class Action(models.Model):
    """A catalogue entry of one tenant (contract §1). Its behaviour lives in its versions."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="actions")
    slug = models.CharField(
        max_length=80,
        validators=[RegexValidator(ACTION_SLUG_RE, "Lowercase letters, digits and hyphens; 2–80 characters.")],
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=ActionKind.choices)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set by flows_app.deleting.delete_action (contract §14); the slug is then free again.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = LiveActionManager()
    all_objects = ActionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "slug"],
                condition=models.Q(deleted_at__isnull=True),
                name="action_slug_unique_in_tenant",
            )
        ]
        indexes = [models.Index(fields=["tenant", "name"], name="action_tenant_name")]
        ordering = ["name"]
        permissions = [
            ("test_action", "Can run an action in the test harness"),
            ("publish_action", "Can publish an action's versions"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def template_slug(self) -> str | None:
        """The platform template this action is, None for a custom action: what a binding's config
        check needs to know (schema_forms.validate_binding_config)."""
        return self.slug if self.kind == ActionKind.TEMPLATE else None

    def latest_version(self) -> ActionVersion | None:
        """The highest version by semver, draft or published (one query)."""
        return self.versions.order_by("-major", "-minor", "-patch").first()


def newer_published_for(versions: list[ActionVersion], pinned: ActionVersion, trigger: str) -> ActionVersion | None:
    """The newest published version among `versions` (listed newest first) that can run in
    `trigger`, when it is newer than `pinned`: what upgrading that binding would offer."""
    for version in versions:
        if version.status == VersionStatus.PUBLISHED and trigger in version.compatible_triggers:
            return version if version.semver_key() > pinned.semver_key() else None
    return None


def parse_semver(label: str) -> semver.Version:
    return semver.Version.parse(label)


def content_checksum(
    source: str, config_schema: Any, compatible_triggers: list[str], egress_hosts: list[str] | None = None
) -> str:
    """The identity of a version's content: saving identical content creates no new version.
    Declared egress hosts are part of it (changing them is a new version); a version without
    any keeps the checksum it had before they existed."""
    content: dict[str, Any] = {
        "source": source,
        "config_schema": config_schema,
        "compatible_triggers": sorted(compatible_triggers),
    }
    if egress_hosts:
        content["egress_hosts"] = sorted(egress_hosts)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


SECRET_NAME_RE = r"^[A-Z][A-Z0-9_]{0,63}$"
MAX_SECRET_VALUE_BYTES = 4096


class ActionSecret(models.Model):
    """A named secret of a custom action, shared by all its versions (contract §11). Stored
    encrypted with the secret box; its value is never shown again after it is set."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=64, validators=[RegexValidator(SECRET_NAME_RE)])
    encrypted_value = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)
    # Who set it last, as the audit trail names them (an operator or an API token).
    updated_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["action", "name"], name="action_secret_name_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ActionVersion(models.Model):
    """An immutable snapshot of an action. Only its publication status ever changes."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=40)
    # Split semver parts so "latest" sorts correctly in SQL (1.10.0 > 1.9.0).
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    source = models.TextField(blank=True)
    compiled_js = models.TextField(blank=True)
    # The `mappings` of tsc's source map from compiled_js back to source, for where an exception
    # came from; empty for versions compiled before the map was kept (their places stay in JS).
    source_map = models.TextField(blank=True)
    config_schema = models.JSONField(default=dict)
    compatible_triggers = models.JSONField(default=list)
    # Contract §11: the hosts the code may call with fetch (actions_app.egress), in the order given.
    egress_hosts = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    checksum = models.CharField(max_length=64)
    saved_with_errors = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["action", "version"], name="version_unique_per_action")]
        indexes = [models.Index(fields=["action", "-major", "-minor", "-patch"], name="version_order")]
        ordering = ["-major", "-minor", "-patch"]

    def __str__(self) -> str:
        return f"{self.action.slug}@{self.version}"

    @property
    def is_published(self) -> bool:
        return self.status == VersionStatus.PUBLISHED

    def semver_key(self) -> tuple[int, int, int]:
        """For comparing versions by semver (1.10.0 > 1.9.0)."""
        return (self.major, self.minor, self.patch)

    @staticmethod
    def semver_fields(label: str) -> dict[str, Any]:
        parsed = parse_semver(label)
        return {"version": str(parsed), "major": parsed.major, "minor": parsed.minor, "patch": parsed.patch}


# guardian with direct foreign keys: indexed joins instead of generic object_pk text matches.
class ActionUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Action, on_delete=models.CASCADE)


class ActionGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Action, on_delete=models.CASCADE)
