"""What changed in one binding between two snapshots (flows_app.services.binding_snapshot), setting
by setting and config key by config key (`config.threshold 80 → 10`). The revision diff and the
audit log's `flow.action_*` events both show a change this way; secrets are masks on both sides,
so a change of one is said without showing it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The binding settings a diff compares, in the order it shows them; config keys follow.
COMPARED = [
    ("action", "Action"),
    ("version", "Version"),
    ("enabled", "Enabled"),
    ("on_error", "On error"),
    ("timeout_ms", "Timeout"),
    ("position", "Position"),
]


@dataclass
class FieldChange:
    label: str
    before: str
    after: str


def _shown(name: str, value: Any) -> str:
    if name == "enabled":
        return "enabled" if value else "disabled"
    if name == "timeout_ms":
        return f"{value} ms"
    if name == "position" and isinstance(value, int):
        return str(value + 1)
    if isinstance(value, str) and name in ("action", "version", "on_error"):
        return value
    return "(not set)" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def snapshot_changes(old: dict[str, Any], new: dict[str, Any], *, secrets_changed: bool = False) -> list[FieldChange]:
    """The settings and config keys whose values differ between two binding snapshots."""
    changes = [
        FieldChange(label, _shown(name, old.get(name)), _shown(name, new.get(name)))
        for name, label in COMPARED
        if old.get(name) != new.get(name)
    ]
    old_config, new_config = old.get("config") or {}, new.get("config") or {}
    for key in sorted(set(old_config) | set(new_config)):
        was, now = old_config.get(key), new_config.get(key)
        if was != now:
            changes.append(FieldChange(f"config.{key}", _shown("config", was), _shown("config", now)))
    if secrets_changed:
        changes.append(FieldChange("secret values", "••••••", "•••••• (changed)"))
    return changes


def _is_binding_snapshot(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("config"), dict) and "action" in value


def event_changes(before: Any, after: Any) -> list[FieldChange]:
    """What a `flow.action_updated` audit event changed, from its before and after (binding
    snapshots); none for anything else (attached, detached, other events)."""
    if not (_is_binding_snapshot(before) and _is_binding_snapshot(after)):
        return []
    return snapshot_changes(before, after, secrets_changed=bool(after.get("secrets_changed")))
