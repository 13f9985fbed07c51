"""Writes on the Actions catalogue."""

from __future__ import annotations

from django.db import transaction

from actions_app.models import Action, ActionKind, ActionVersion, VersionStatus, content_checksum
from actions_app.templates_catalog import PLATFORM_TEMPLATES
from tenants.acting import backdated
from tenants.models import Tenant
from tenants.permissions import grant_tenant_roles


def sync_platform_templates(tenant: Tenant) -> int:
    """Give `tenant` one `template` action per platform template and one published version per
    shipped template version. Idempotent: run on tenant creation and after every migrate, so a
    release that ships a new template version reaches every tenant. Returns versions created.
    It records no audit event (the platform's own code, not a change anyone made), so it takes no
    acting context; new rows take the time being imported, if any (tenants.acting.backdated).

    A template's versions are code that ships with the platform (contract §1), not operators'
    snapshots: a stored copy whose schema or triggers differ from the release (the release
    corrected them) is brought in line, so every tenant validates a version alike. Bindings keep
    their config; a config the corrected schema refuses is named when its flow is next saved."""
    created_versions = 0
    with transaction.atomic():
        existing = {a.slug: a for a in Action.objects.filter(tenant=tenant, kind=ActionKind.TEMPLATE)}
        new_actions = [
            Action(
                tenant=tenant,
                slug=t.slug,
                name=t.name,
                kind=ActionKind.TEMPLATE,
                description=t.description,
                **backdated(),
            )
            for t in PLATFORM_TEMPLATES
            if t.slug not in existing
        ]
        if new_actions:
            Action.objects.bulk_create(new_actions)
            # bulk_create does not return primary keys on every backend; read them back.
            existing = {a.slug: a for a in Action.objects.filter(tenant=tenant, kind=ActionKind.TEMPLATE)}
            grant_tenant_roles(tenant, [existing[a.slug] for a in new_actions])
        have = {
            (version.action_id, version.version): version
            for version in ActionVersion.objects.filter(action__in=existing.values()).only(
                "action_id", "version", "config_schema", "compatible_triggers"
            )
        }
        missing = []
        for template in PLATFORM_TEMPLATES:
            action = existing[template.slug]
            if action.description != template.description or action.name != template.name:
                Action.objects.filter(pk=action.pk).update(name=template.name, description=template.description)
            for shipped in template.versions:
                stored = have.get((action.pk, shipped.version))
                triggers = list(shipped.compatible_triggers)
                checksum = content_checksum("", shipped.config_schema, triggers)
                if stored is not None:
                    if stored.config_schema != shipped.config_schema or stored.compatible_triggers != triggers:
                        ActionVersion.objects.filter(pk=stored.pk).update(
                            config_schema=shipped.config_schema, compatible_triggers=triggers, checksum=checksum
                        )
                    continue
                missing.append(
                    ActionVersion(
                        action=action,
                        **ActionVersion.semver_fields(shipped.version),
                        config_schema=shipped.config_schema,
                        compatible_triggers=triggers,
                        status=VersionStatus.PUBLISHED,
                        checksum=checksum,
                        **backdated(),
                    )
                )
        ActionVersion.objects.bulk_create(missing)
        created_versions = len(missing)
    return created_versions


def sync_platform_templates_everywhere() -> None:
    for tenant in Tenant.objects.all():
        sync_platform_templates(tenant)
