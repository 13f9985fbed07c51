"""Custom actions: create, save versions, publish (contract §5).

Each write compiles the TypeScript first (outside any lock: it takes a sub-second subprocess),
then takes the action's row lock so two saves of the same action run one after the other: the
second either lands as the next version or, when the editor says which version it started
from and that is no longer the latest, is refused with a conflict showing both texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import semver
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from actions_app.compiler import MAX_SOURCE_BYTES, CompileResult, Diagnostic, compile_action
from actions_app.egress import EgressHostsRefused, normalize_egress_hosts
from actions_app.models import (
    Action,
    ActionKind,
    ActionVersion,
    VersionStatus,
    content_checksum,
)
from actions_app.schema_forms import check_schema_supported
from actions_app.secrets import list_secrets
from actions_app.triggers import ALL_TRIGGERS
from audit_app.services import record
from tenants.acting import Acting, backdated, history_time
from tenants.models import Tenant
from tenants.permissions import grant_tenant_roles

FIRST_VERSION = "0.1.0"
# Path words of the actions URLs; an action with one of these slugs could not be reached.
RESERVED_SLUGS = {"new", "schema-preview", "sdk-types", "sample-input"}
BUMPS = ("patch", "minor", "major")
# Each part is stored in an integer column (PostgreSQL's integer, 32 bits signed).
MAX_VERSION_PART = 2**31 - 1


@dataclass(frozen=True)
class VersionDraft:
    """What an operator submits for a version: the three things a version's identity covers."""

    source: str
    config_schema: Any
    compatible_triggers: list[str]
    # Contract §11: hosts the code may call (actions_app.egress); none by default.
    egress_hosts: list[str] = field(default_factory=list)

    @property
    def checksum(self) -> str:
        return content_checksum(self.source, self.config_schema, self.compatible_triggers, self.declared_hosts())

    def declared_hosts(self) -> list[str]:
        """The egress hosts as stored (normalized); as given when they are refused (check_draft says why)."""
        try:
            return normalize_egress_hosts(self.egress_hosts)
        except EgressHostsRefused:
            return list(self.egress_hosts)


class InvalidDraft(ValueError):
    """Input errors by field name, in plain words, for the form or the API's 422."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))
        self.errors = errors


class CompileFailed(Exception):
    """The TypeScript has errors and the operator did not choose "save anyway"."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(f"{len(diagnostics)} TypeScript error(s)")
        self.diagnostics = diagnostics


class NothingChanged(Exception):
    """Source, schema and triggers equal the latest version's: no version is created."""

    def __init__(self, latest: ActionVersion) -> None:
        super().__init__(f"Identical to {latest.version}; nothing saved.")
        self.latest = latest


class VersionConflict(Exception):
    """Someone saved a newer version after the editor loaded `base_version`."""

    def __init__(self, latest: ActionVersion, base_version: str) -> None:
        super().__init__(f"{latest.version} was saved after you opened {base_version}.")
        self.latest = latest
        self.base_version = base_version


@dataclass
class SaveOutcome:
    version: ActionVersion
    compile_result: CompileResult
    events: list[str] = field(default_factory=list)


def derive_slug(name: str) -> str:
    return slugify(name)[:80].strip("-")


def free_slug(tenant: Tenant, wanted: str) -> str:
    """`wanted`, or the first of wanted-2, wanted-3… that no action of the tenant (nor the console)
    uses: a slug derived from a starter's name ("domain-allowlist") is often a template's."""
    taken = set(
        Action.objects.filter(tenant=tenant, slug__startswith=wanted[:70]).values_list("slug", flat=True)
    ) | set(RESERVED_SLUGS)
    if wanted not in taken:
        return wanted
    stem = wanted[:70].rstrip("-")
    return next(f"{stem}-{n}" for n in range(2, len(taken) + 3) if f"{stem}-{n}" not in taken)


def check_draft(draft: VersionDraft) -> dict[str, list[str]]:
    """Plain-word problems with a draft, by field; empty when it can be compiled and saved."""
    errors: dict[str, list[str]] = {}
    if len(draft.source.encode()) > MAX_SOURCE_BYTES:
        errors["source"] = [f"The source is over the {MAX_SOURCE_BYTES // 1024} kB limit."]
    elif not draft.source.strip():
        errors["source"] = ["Write the action's code: it must export an async function execute."]
    if not draft.compatible_triggers:
        errors["compatible_triggers"] = ["Choose at least one trigger slot this action can run in."]
    unknown = [t for t in draft.compatible_triggers if t not in ALL_TRIGGERS]
    if unknown:
        errors.setdefault("compatible_triggers", []).append(f"Unknown trigger slot(s): {', '.join(unknown)}.")
    schema_problems = config_schema_problems(draft.config_schema)
    if schema_problems:
        errors["config_schema"] = schema_problems
    try:
        normalize_egress_hosts(draft.egress_hosts)
    except EgressHostsRefused as refused:
        errors["egress_hosts"] = refused.problems
    return errors


def config_schema_problems(schema: Any) -> list[str]:
    """Why `schema` cannot be a version's config schema, in words; [] when it can. A save and the
    test harness both ask: what a save refuses, the harness does not run."""
    if not isinstance(schema, dict):
        return ["The config schema must be a JSON object."]
    return [f"{p.path or '/'}: {p.message}" for p in check_schema_supported(schema)]


def next_version_label(latest: str | None, bump: str = "patch", explicit: str | None = None) -> str:
    """The label of the next version: 0.1.0 first, then a bump or an explicit higher semver."""
    if explicit:
        try:
            wanted = semver.Version.parse(explicit.strip())
        except ValueError as error:
            raise InvalidDraft({"version": [f"“{explicit}” is not a semantic version such as 1.2.3."]}) from error
        if wanted.prerelease or wanted.build:
            raise InvalidDraft({"version": ["Use a plain MAJOR.MINOR.PATCH version without a suffix."]})
        if latest is not None and wanted <= semver.Version.parse(latest):
            raise InvalidDraft({"version": [f"Must be higher than the latest version {latest}."]})
        if max(wanted.major, wanted.minor, wanted.patch) > MAX_VERSION_PART:
            raise InvalidDraft({"version": [f"Each of MAJOR, MINOR and PATCH can be at most {MAX_VERSION_PART}."]})
        return str(wanted)
    if latest is None:
        return FIRST_VERSION
    if bump not in BUMPS:
        raise InvalidDraft({"bump": [f"Choose one of {', '.join(BUMPS)}."]})
    current = semver.Version.parse(latest)
    bumped = {"patch": current.bump_patch, "minor": current.bump_minor, "major": current.bump_major}[bump]()
    if max(bumped.major, bumped.minor, bumped.patch) > MAX_VERSION_PART:
        raise InvalidDraft({"bump": [f"{latest} cannot take a {bump} bump: parts stop at {MAX_VERSION_PART}."]})
    return str(bumped)


def _compile_or_refuse(
    draft: VersionDraft,
    save_anyway: bool,
    other_errors: dict[str, list[str]] | None = None,
    secret_names: list[str] | None = None,
) -> CompileResult:
    """Refuse a draft with input errors (all fields reported together) or, unless the operator
    chose "save anyway", with TypeScript errors; otherwise return the compiled JavaScript."""
    errors = {**(other_errors or {}), **check_draft(draft)}
    if errors:
        raise InvalidDraft(errors)
    result = compile_action(draft.source, draft.config_schema, secret_names=secret_names or [])
    if not result.ok and (not save_anyway or not result.js):
        raise CompileFailed(result.diagnostics)
    return result


def version_snapshot(version: ActionVersion) -> dict[str, Any]:
    """What audit events and the API say about a version (content itself excluded)."""
    return {
        "version": version.version,
        "status": version.status,
        "compatible_triggers": version.compatible_triggers,
        "egress_hosts": version.egress_hosts,
        "checksum": version.checksum,
        "saved_with_errors": version.saved_with_errors,
    }


def _insert_version(
    action: Action,
    label: str,
    draft: VersionDraft,
    compiled: CompileResult,
    author: Any,
) -> ActionVersion:
    return ActionVersion.objects.create(
        **backdated(),
        action=action,
        **ActionVersion.semver_fields(label),
        source=draft.source,
        compiled_js=compiled.js,
        source_map=compiled.source_map,
        config_schema=draft.config_schema,
        compatible_triggers=[t for t in ALL_TRIGGERS if t in draft.compatible_triggers],
        egress_hosts=draft.declared_hosts(),
        author=author,
        checksum=draft.checksum,
        saved_with_errors=not compiled.ok,
    )


def create_custom_action(
    tenant: Tenant,
    *,
    name: str,
    slug: str,
    draft: VersionDraft,
    description: str = "",
    save_anyway: bool = False,
    acting: Acting,
) -> SaveOutcome:
    """Create a custom action and its first version, 0.1.0 (a draft), authored by the acting
    operator (none when a token or the platform creates it)."""
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = ["Give the action a name."]
    elif len(name) > 120:
        errors["name"] = ["Keep the name within 120 characters."]
    slug = (slug or derive_slug(name)).strip()
    try:
        Action._meta.get_field("slug").run_validators(slug)
    except ValidationError:
        errors["slug"] = ["Use 2–80 lowercase letters, digits and hyphens, starting and ending with a letter or digit."]
    if "slug" not in errors and slug in RESERVED_SLUGS:
        errors["slug"] = [f"“{slug}” is reserved by the console; choose another slug."]
    if "slug" not in errors and Action.objects.filter(tenant=tenant, slug=slug).exists():
        errors["slug"] = [f"An action with the slug “{slug}” already exists in this tenant."]
    compiled = _compile_or_refuse(draft, save_anyway, errors)
    try:
        with transaction.atomic():
            action = Action.objects.create(
                tenant=tenant,
                slug=slug,
                name=name,
                kind=ActionKind.CUSTOM,
                description=description,
                created_by=acting.user,
                **backdated(),
            )
            grant_tenant_roles(tenant, [action])
            version = _insert_version(action, FIRST_VERSION, draft, compiled, acting.user)
            record(
                tenant=tenant,
                event_type="action.created",
                actor=acting.actor,
                meta=acting.meta,
                action_slug=slug,
                action_version=version.version,
                after={"name": name, "slug": slug, "kind": ActionKind.CUSTOM},
            )
            record(
                tenant=tenant,
                event_type="action.version_saved",
                actor=acting.actor,
                meta=acting.meta,
                action_slug=slug,
                action_version=version.version,
                after=version_snapshot(version),
            )
    except IntegrityError as error:
        # Someone created the same slug between our check and our insert.
        raise InvalidDraft({"slug": [f"An action with the slug “{slug}” already exists in this tenant."]}) from error
    return SaveOutcome(version, compiled, ["action.created", "action.version_saved"])


def save_action_version(
    action: Action,
    draft: VersionDraft,
    *,
    bump: str = "patch",
    explicit_version: str | None = None,
    base_version: str | None = None,
    save_anyway: bool = False,
    acting: Acting,
) -> SaveOutcome:
    """Save a new immutable version of a custom action, authored by the acting operator.

    `base_version` is the version the editor started from; when given and no longer the latest,
    the save is refused with `VersionConflict`. Without it (API callers), concurrent saves land
    as consecutive versions."""
    if action.kind != ActionKind.CUSTOM:
        raise InvalidDraft({"action": ["Template actions ship with the platform and cannot be edited."]})
    compiled = _compile_or_refuse(draft, save_anyway, secret_names=[s.name for s in list_secrets(action)])
    with transaction.atomic():
        Action.objects.select_for_update(no_key=True).filter(pk=action.pk).first()
        latest = action.latest_version()
        if latest is not None and base_version and latest.version != base_version:
            raise VersionConflict(latest, base_version)
        if latest is not None and latest.checksum == draft.checksum:
            raise NothingChanged(latest)
        label = next_version_label(latest.version if latest else None, bump, explicit_version)
        if ActionVersion.objects.filter(action=action, version=label).exists():
            raise InvalidDraft({"version": [f"Version {label} already exists."]})
        version = _insert_version(action, label, draft, compiled, acting.user)
        record(
            tenant=action.tenant,
            event_type="action.version_saved",
            actor=acting.actor,
            meta=acting.meta,
            action_slug=action.slug,
            action_version=label,
            before=version_snapshot(latest) if latest else None,
            after=version_snapshot(version),
        )
    return SaveOutcome(version, compiled, ["action.version_saved"])


def publish_version(version: ActionVersion, *, acting: Acting) -> ActionVersion:
    """Mark a version published (by the acting operator) so flows can pin it. Publishing twice
    changes nothing."""
    with transaction.atomic():
        version = (
            ActionVersion.objects.select_for_update(no_key=True, of=("self",))
            .select_related("action__tenant")
            .get(pk=version.pk)
        )
        if version.status == VersionStatus.PUBLISHED:
            return version
        if version.saved_with_errors:
            raise InvalidDraft({"version": ["A version saved with TypeScript errors cannot be published."]})
        before = version_snapshot(version)
        version.status = VersionStatus.PUBLISHED
        version.published_at = history_time() or timezone.now()
        version.published_by = acting.user
        # Only the publication fields change; the content of a version is immutable.
        version.save(update_fields=["status", "published_at", "published_by"])
        record(
            tenant=version.action.tenant,
            event_type="flow.action_published",
            actor=acting.actor,
            meta=acting.meta,
            action_slug=version.action.slug,
            action_version=version.version,
            before=before,
            after=version_snapshot(version),
        )
    return version
