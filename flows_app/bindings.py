"""A binding's config at rest: plain values in `config`, write-only secrets encrypted apart.

Secrets never sit in `config`, so nothing that shows or diffs a binding's config (the flow
editor, audit before/after, the API) can leak one by accident.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from actions_app.schema_forms import secret_paths
from core.secret_box import decrypt_secret, encrypt_secret
from flows_app.models import Binding


def _get(document: dict[str, Any], path: str) -> Any:
    current: Any = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    current = document
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


def _pop(document: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    current: Any = document
    for part in parts[:-1]:
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, dict):
        current.pop(parts[-1], None)


def split_secrets(config: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config without secrets, {dotted path: secret value})."""
    plain = copy.deepcopy(config)
    secrets: dict[str, Any] = {}
    for path in secret_paths(schema):
        value = _get(config, path)
        if value is not None:
            secrets[path] = value
            _pop(plain, path)
    return plain, secrets


def seal_secrets(secrets: dict[str, Any]) -> str:
    return encrypt_secret(json.dumps(secrets, sort_keys=True)) if secrets else ""


def stored_secrets(binding: Binding) -> dict[str, Any]:
    if not binding.encrypted_secrets:
        return {}
    value: dict[str, Any] = json.loads(decrypt_secret(binding.encrypted_secrets))
    return value


def binding_config(binding: Binding) -> dict[str, Any]:
    """The full config an execution sees: plain values with the secrets put back."""
    config = copy.deepcopy(binding.config)
    for path, value in stored_secrets(binding).items():
        _set(config, path, value)
    return config
