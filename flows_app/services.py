"""Writes on flows: the system flows of a tenant, and saving slots as a new revision."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from actions_app.models import Action, ActionVersion, VersionStatus
from actions_app.schema_forms import validate_binding_config
from actions_app.triggers import FLOW_KINDS, FLOW_SLOTS
from audit_app.services import EventDraft, record, record_many
from flows_app.bindings import seal_secrets, split_secrets, stored_secrets
from flows_app.models import Binding, Flow, FlowRevision, OnError
from tenants.acting import Acting, backdated
from tenants.models import Tenant
from tenants.permissions import grant_tenant_roles

SYSTEM_FLOW_NAMES = {
    "login": "Login",
    "registration": "Registration",
    "password-reset": "Password reset",
    "token-refresh": "Token refresh",
}
MASK = "••••••"


def ensure_system_flows(tenant: Tenant) -> list[Flow]:
    """The tenant's one flow per kind (slug = kind), each starting at an empty revision 1. Part
    of founding the tenant and recorded by no audit event, so it takes no acting context; the
    rows take the time being imported, if any (tenants.acting.backdated)."""
    created = []
    with transaction.atomic():
        for kind in FLOW_KINDS:
            flow, was_created = Flow.objects.get_or_create(
                tenant=tenant,
                slug=kind,
                defaults={"name": SYSTEM_FLOW_NAMES[kind], "kind": kind, "is_system": True, **backdated()},
            )
            if was_created:
                revision = FlowRevision.objects.create(
                    flow=flow, number=1, comment="Created with the tenant", **backdated()
                )
                flow.current_revision = revision
                flow.save(update_fields=["current_revision"])
                created.append(flow)
        grant_tenant_roles(tenant, created)
    return created


@dataclass
class BindingSpec:
    """One binding as an editor or the API describes it. A secret left out keeps the stored one."""

    action: str
    version: str
    config: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    on_error: str = OnError.BLOCK
    timeout_ms: int = 1000
    key: uuid.UUID | None = None
    # False when the spec carries the binding's whole config, secrets included (a restored or
    # promoted binding): then a secret it lacks is dropped instead of kept from the edited one.
    keep_stored_secrets: bool = True


# A sign-in waits for every enabled action of a slot in turn. These keep one slot from holding it
# for minutes (20 × 5,000 ms would be 100 s) and keep a slot readable in the flow editor.
MAX_BINDINGS_PER_SLOT = 20
MAX_SLOT_TIMEOUT_MS = 10_000


def slot_limit_problems(specs: list[BindingSpec]) -> list[str]:
    """Why a slot's list of bindings is over its limits ([] when it is not)."""
    problems = []
    if len(specs) > MAX_BINDINGS_PER_SLOT:
        problems.append(f"A slot can hold at most {MAX_BINDINGS_PER_SLOT} actions; this one has {len(specs)}.")
    budget = sum(spec.timeout_ms for spec in specs if spec.enabled)
    if budget > MAX_SLOT_TIMEOUT_MS:
        problems.append(
            f"The enabled actions' timeouts add up to {budget:,} ms; a slot may hold a sign-in for at most "
            f"{MAX_SLOT_TIMEOUT_MS:,} ms. Lower some timeouts or disable an action."
        )
    return problems


class InvalidBindings(ValueError):
    """Errors keyed by "<trigger>.<index>.<field>" so the editor can show each next to its input."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class StaleRevision(Exception):
    """The flow was saved by someone else after the editor loaded `expected`."""

    def __init__(self, current: FlowRevision, expected: int) -> None:
        super().__init__(f"The flow is at revision {current.number}; you edited revision {expected}.")
        self.current = current
        self.expected = expected


@dataclass
class _Resolved:
    spec: BindingSpec
    action: Action
    version: ActionVersion
    plain: dict[str, Any]
    secrets: dict[str, Any]
    key: uuid.UUID
    previous: Binding | None


def match_previous(specs: list[BindingSpec], old: list[Binding]) -> list[Binding | None]:
    """Pair each spec with the binding it edits: by key when given, else the same action in order."""
    by_key = {b.key: b for b in old}
    unused = [b for b in old if b.key not in {s.key for s in specs if s.key}]
    matched: list[Binding | None] = []
    for spec in specs:
        if spec.key is not None:
            matched.append(by_key.get(spec.key))
            continue
        candidate = next((b for b in unused if b.action.slug == spec.action), None)
        if candidate is not None:
            unused.remove(candidate)
        matched.append(candidate)
    return matched


def _resolve(
    flow: Flow, trigger: str, specs: list[BindingSpec], old: list[Binding], errors: dict[str, list[str]]
) -> list[_Resolved]:
    actions = {a.slug: a for a in Action.objects.filter(tenant=flow.tenant, slug__in={s.action for s in specs})}
    versions = {
        (v.action.slug, v.version): v
        for v in ActionVersion.objects.filter(action__in=actions.values()).select_related("action")
    }
    resolved = []
    for index, (spec, previous) in enumerate(zip(specs, match_previous(specs, old), strict=True)):
        where = f"{trigger}.{index}"
        action = actions.get(spec.action)
        version = versions.get((spec.action, spec.version))
        if action is None:
            errors[f"{where}.action"] = [f"No action {spec.action!r} in this tenant."]
            continue
        if version is None:
            errors[f"{where}.version"] = [f"{spec.action} has no version {spec.version!r}."]
            continue
        if version.status != VersionStatus.PUBLISHED:
            errors[f"{where}.version"] = [f"{spec.action} {spec.version} is not published; publish it first."]
        if trigger not in version.compatible_triggers:
            errors[f"{where}.action"] = [
                f"{spec.action} {spec.version} cannot run in {trigger}; it supports "
                f"{', '.join(version.compatible_triggers)}."
            ]
        if spec.on_error not in OnError.values:
            errors[f"{where}.on_error"] = ["Choose block or continue."]
        if not 50 <= spec.timeout_ms <= 5000:
            errors[f"{where}.timeout_ms"] = ["The timeout must be between 50 and 5000 ms."]
        plain, secrets = split_secrets(spec.config, version.config_schema)
        if previous is not None and previous.action_id == action.pk and spec.keep_stored_secrets:
            # A secret left blank keeps the one already stored for this binding.
            secrets = {**stored_secrets(previous), **secrets}
        full = _with_secrets(plain, secrets)
        for path, messages in validate_binding_config(
            version.config_schema, full, template=action.template_slug
        ).items():
            errors[f"{where}.config{'.' + path if path else ''}"] = messages
        key = previous.key if previous is not None else (spec.key or uuid.uuid4())
        resolved.append(_Resolved(spec, action, version, plain, secrets, key, previous))
    return resolved


def _with_secrets(plain: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    full = {**plain}
    for path, value in secrets.items():
        parts = path.split(".")
        current = full
        for part in parts[:-1]:
            current = current.setdefault(part, {})
        current[parts[-1]] = value
    return full


def binding_snapshot(binding: Binding) -> dict[str, Any]:
    """What audit and diffs show of a binding: secrets only ever as a mask."""
    config = dict(binding.config)
    for path in stored_secrets(binding):
        config[path] = MASK
    return {
        "action": binding.action.slug,
        "version": binding.pinned_version.version,
        "position": binding.position,
        "enabled": binding.enabled,
        "on_error": binding.on_error,
        "timeout_ms": binding.timeout_ms,
        "config": config,
    }


def save_flow_slots(
    flow: Flow,
    slots: dict[str, list[BindingSpec]],
    *,
    expected_revision: int,
    comment: str = "",
    audit_note: str = "",
    acting: Acting,
) -> FlowRevision:
    """Save the given slots' bindings as a new revision (created by the acting operator); other
    slots are carried over unchanged. (`audit_note`, e.g. "Restored revision 3", is shown with
    each of its audit events.)

    Refused with StaleRevision when the flow moved past `expected_revision`, and with
    InvalidBindings (nothing saved) when any binding is wrong."""
    unknown = [t for t in slots if t not in FLOW_SLOTS[flow.kind]]
    if unknown:
        raise InvalidBindings({t: [f"{t} is not a slot of the {flow.kind} flow."] for t in unknown})
    with transaction.atomic():
        flow = (
            Flow.objects.select_for_update(no_key=True, of=("self",))
            .select_related("tenant", "current_revision")
            .get(pk=flow.pk)
        )
        current = flow.current_revision
        assert current is not None
        if current.number != expected_revision:
            raise StaleRevision(current, expected_revision)
        old_bindings = list(current.bindings.select_related("action", "pinned_version").order_by("trigger", "position"))
        resolved, errors = _check(flow, slots, old_bindings)
        if errors:
            raise InvalidBindings(errors)
        revision = FlowRevision.objects.create(
            flow=flow,
            number=current.number + 1,
            created_by=acting.user,
            comment=comment,
            **backdated(),
        )
        new_rows = [copy_binding(b, revision) for b in old_bindings if b.trigger not in slots]
        for trigger, items in resolved.items():
            new_rows += [
                Binding(
                    revision=revision,
                    key=item.key,
                    trigger=trigger,
                    position=position,
                    action=item.action,
                    pinned_version=item.version,
                    config=item.plain,
                    encrypted_secrets=seal_secrets(item.secrets),
                    enabled=item.spec.enabled,
                    on_error=item.spec.on_error,
                    timeout_ms=item.spec.timeout_ms,
                )
                for position, item in enumerate(items)
            ]
        Binding.objects.bulk_create(new_rows)
        flow.current_revision = revision
        flow.save(update_fields=["current_revision"])
        new_by_key = {b.key: b for b in new_rows}
        events = _change_events(flow, revision, slots, old_bindings, new_by_key, resolved, acting)
        record_many([dataclasses.replace(e, target=audit_note) for e in events])
    return revision


def _check(
    flow: Flow, slots: dict[str, list[BindingSpec]], old_bindings: list[Binding]
) -> tuple[dict[str, list[_Resolved]], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    for trigger, specs in slots.items():
        if problems := slot_limit_problems(specs):
            errors[trigger] = problems
    resolved = {
        trigger: _resolve(flow, trigger, specs, [b for b in old_bindings if b.trigger == trigger], errors)
        for trigger, specs in slots.items()
    }
    return resolved, errors


def slot_problems(flow: Flow, slots: dict[str, list[BindingSpec]], against: FlowRevision) -> dict[str, list[str]]:
    """What saving `slots` over the revision `against` would refuse, keyed as InvalidBindings
    keys them ({} when it would save): lets a preview say so before anyone confirms."""
    old_bindings = list(against.bindings.select_related("action", "pinned_version"))
    return _check(flow, slots, old_bindings)[1]


def copy_binding(
    binding: Binding, revision: FlowRevision | None, *, key: uuid.UUID | None = None, position: int | None = None
) -> Binding:
    """An unsaved copy of `binding` in `revision` (None: in none yet, e.g. for a preview)."""
    return Binding(
        revision=revision,
        key=key or binding.key,
        trigger=binding.trigger,
        position=binding.position if position is None else position,
        action=binding.action,
        pinned_version=binding.pinned_version,
        config=binding.config,
        encrypted_secrets=binding.encrypted_secrets,
        enabled=binding.enabled,
        on_error=binding.on_error,
        timeout_ms=binding.timeout_ms,
    )


def binding_event(
    event_type: str,
    binding: Binding,
    flow: Flow,
    revision: FlowRevision,
    before: Any,
    after: Any,
    *,
    acting: Acting,
    note: str = "",
) -> EventDraft:
    """A `flow.action_*` event about `binding` in `revision` of `flow` (`note`: shown with it)."""
    return EventDraft(
        tenant=flow.tenant,
        event_type=event_type,
        actor=acting.actor,
        meta=acting.meta,
        action_slug=binding.action.slug,
        action_version=binding.pinned_version.version,
        flow_slug=flow.slug,
        flow_revision=revision.number,
        trigger=binding.trigger,
        target=note,
        before=before,
        after=after,
    )


def _change_events(
    flow: Flow,
    revision: FlowRevision,
    slots: dict[str, list[BindingSpec]],
    old_bindings: list[Binding],
    new_by_key: dict[uuid.UUID, Binding],
    resolved: dict[str, list[_Resolved]],
    acting: Acting,
) -> list[EventDraft]:
    events = []

    def event(event_type: str, binding: Binding, before: Any, after: Any) -> EventDraft:
        return binding_event(event_type, binding, flow, revision, before, after, acting=acting)

    for trigger in slots:
        old_here = {b.key: b for b in old_bindings if b.trigger == trigger}
        kept_keys = {item.key for item in resolved[trigger]}
        for key, old in old_here.items():
            if key not in kept_keys:
                events.append(event("flow.action_detached", old, binding_snapshot(old), None))
        for item in resolved[trigger]:
            new = new_by_key[item.key]
            after = binding_snapshot(new)
            if item.key not in old_here:
                events.append(event("flow.action_attached", new, None, after))
                continue
            before = binding_snapshot(old_here[item.key])
            if stored_secrets(old_here[item.key]) != item.secrets:
                after = {**after, "secrets_changed": True}
            if before != after:
                events.append(event("flow.action_updated", new, before, after))
    return events


# Path words of the flows URLs: a flow with one of these slugs could not be reached.
RESERVED_FLOW_SLUGS = {"new"}


class FlowSlugTaken(ValueError):
    """Another flow of the tenant already has this slug."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"A flow with the slug “{slug}” already exists in this tenant.")
        self.slug = slug


def create_flow(
    tenant: Tenant,
    *,
    name: str,
    slug: str,
    kind: str,
    copy_of: FlowRevision | None = None,
    acting: Acting,
) -> Flow:
    """A new flow of `kind` with an empty revision 1 (created by the acting operator), granted to
    the tenant's role groups, recorded as `flow.created`. Refused with FlowSlugTaken when the slug
    is in use. (`copy_of`: the revision a duplicate is made from, named in revision 1's comment
    and the event; flows_app.duplicating fills revision 1 with its bindings.)"""
    if kind not in FLOW_KINDS:
        raise ValueError(f"Unknown flow kind {kind!r}.")
    if slug in RESERVED_FLOW_SLUGS:
        raise FlowSlugTaken(slug)
    try:
        with transaction.atomic():
            if Flow.objects.filter(tenant=tenant, slug=slug).exists():
                raise FlowSlugTaken(slug)
            flow = Flow.objects.create(tenant=tenant, slug=slug, name=name, kind=kind)
            comment = f"Duplicated from {copy_of.flow.slug} r{copy_of.number}" if copy_of else "Created"
            revision = FlowRevision.objects.create(flow=flow, number=1, created_by=acting.user, comment=comment)
            flow.current_revision = revision
            flow.save(update_fields=["current_revision"])
            grant_tenant_roles(tenant, [flow])
            record(
                tenant=tenant,
                event_type="flow.created",
                actor=acting.actor,
                meta=acting.meta,
                flow_slug=flow.slug,
                flow_revision=1,
                after={
                    "name": name,
                    "kind": kind,
                    "enabled": flow.enabled,
                    **({"duplicated_from": {"flow": copy_of.flow.slug, "revision": copy_of.number}} if copy_of else {}),
                },
                target=comment if copy_of else "",
            )
    except IntegrityError as error:
        # Someone created the same slug between our check and our insert.
        raise FlowSlugTaken(slug) from error
    return flow


def set_flow_enabled(flow: Flow, enabled: bool, *, acting: Acting) -> Flow:
    """Turn a flow on or off, recorded as `flow.enabled` / `flow.disabled` when it changes. A
    disabled flow runs no actions (the engine checks `flow.enabled`); its transactions still get
    an outcome (continue), so sign-ins go on without the actions."""
    with transaction.atomic():
        was = Flow.objects.select_for_update(no_key=True).values_list("enabled", flat=True).get(pk=flow.pk)
        if was != enabled:
            Flow.objects.filter(pk=flow.pk).update(enabled=enabled)
            record(
                tenant=flow.tenant,
                event_type="flow.enabled" if enabled else "flow.disabled",
                actor=acting.actor,
                meta=acting.meta,
                flow_slug=flow.slug,
                flow_revision=flow.current_revision.number if flow.current_revision else None,
                before={"enabled": was},
                after={"enabled": enabled},
            )
    flow.enabled = enabled
    return flow
