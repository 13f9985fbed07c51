"""An action folder: the TypeScript source and `action.json`, its metadata.

    risk-gate/
      action.json   {"name": "Risk gate", "slug": "risk-gate", "triggers": ["login.post-auth"],
                     "config_schema": {...}, "source": "action.ts", "attach_config": {...}}
      action.ts

`source` is optional when the folder holds exactly one `.ts` file; `config_schema` defaults to
an empty object schema; `attach_config` is the config of a binding that `--pin` adds to a slot
where the action is not attached yet (existing bindings keep their own config).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METADATA_FILE = "action.json"
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,78}[a-z0-9]$")
KNOWN_KEYS = {"name", "slug", "triggers", "config_schema", "source", "attach_config"}


class BundleError(ValueError):
    """The action folder cannot be used; `problems` say what to fix."""

    def __init__(self, folder: Path, problems: list[str]) -> None:
        super().__init__(f"{folder}: " + "; ".join(problems))
        self.folder = folder
        self.problems = problems


@dataclass(frozen=True)
class ActionBundle:
    name: str
    slug: str
    triggers: list[str]
    source: str
    config_schema: dict[str, Any] = field(default_factory=dict)
    attach_config: dict[str, Any] = field(default_factory=dict)


def _read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / METADATA_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(folder, [f"no {METADATA_FILE} (name, slug, triggers, config_schema)"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise BundleError(folder, [f"cannot read {METADATA_FILE}: {error}"]) from error
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"{METADATA_FILE} line {error.lineno}, column {error.colno}: {error.msg}"
        raise BundleError(folder, [message]) from error
    if not isinstance(metadata, dict):
        raise BundleError(folder, [f"{METADATA_FILE} must hold a JSON object"])
    return metadata


def _source_path(folder: Path, metadata: dict[str, Any], problems: list[str]) -> Path | None:
    named = metadata.get("source")
    if named is not None:
        if not isinstance(named, str) or not named:
            problems.append('source: give the file name of the TypeScript source, e.g. "action.ts"')
            return None
        return folder / named
    candidates = sorted(p for p in folder.glob("*.ts") if not p.name.endswith(".d.ts"))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        problems.append(f'source: name the TypeScript file in {METADATA_FILE} ("source"); .ts files found: {found}')
        return None
    return candidates[0]


def load_bundle(folder: Path) -> ActionBundle:
    """The action in `folder`, or BundleError listing every problem found."""
    if not folder.is_dir():
        raise BundleError(folder, ["not a folder"])
    metadata = _read_metadata(folder)
    problems = [f"unknown key {key!r} in {METADATA_FILE}" for key in sorted(set(metadata) - KNOWN_KEYS)]
    name, slug, triggers = metadata.get("name"), metadata.get("slug"), metadata.get("triggers")
    if not isinstance(name, str) or not name.strip():
        problems.append("name: give the action a name")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        problems.append("slug: 2–80 lowercase letters, digits and hyphens, starting and ending with a letter or digit")
    if not isinstance(triggers, list) or not triggers or not all(isinstance(t, str) for t in triggers):
        problems.append('triggers: a non-empty list of trigger slots, e.g. ["login.post-auth"]')
    config_schema = metadata.get("config_schema", {"type": "object", "properties": {}})
    if not isinstance(config_schema, dict):
        problems.append("config_schema: a JSON Schema object")
    attach_config = metadata.get("attach_config", {})
    if not isinstance(attach_config, dict):
        problems.append("attach_config: a JSON object (the config of a binding that --pin attaches)")
    source_path = _source_path(folder, metadata, problems)
    source = ""
    if source_path is not None:
        try:
            source = source_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"source: cannot read {source_path.name}: {error}")
    if problems:
        raise BundleError(folder, problems)
    assert isinstance(name, str) and isinstance(slug, str) and isinstance(triggers, list) and source_path
    return ActionBundle(
        name=name.strip(),
        slug=slug,
        triggers=list(triggers),
        source=source,
        config_schema=config_schema,
        attach_config=attach_config,
    )
