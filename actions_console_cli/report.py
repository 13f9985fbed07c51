"""What a rollout did on each tenant, as the final table (or JSON for scripts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from actions_console_cli.client import ApiFailure
from actions_console_cli.tenants_file import TenantLine


@dataclass
class TenantOutcome:
    line: TenantLine
    tenant: str | None = None
    document: dict[str, Any] | None = None
    failure: ApiFailure | None = None
    retried: int = 0

    @property
    def label(self) -> str:
        if self.tenant is None:
            return self.line.label
        parts = urlsplit(self.line.base_url)
        path = parts.path.rstrip("/")
        return f"{self.tenant} @ {parts.netloc}{path}"

    @property
    def succeeded(self) -> bool:
        return self.failure is None and self.document is not None

    def fail(self, reason: str) -> None:
        self.failure = ApiFailure(reason)


def result_words(outcome: TenantOutcome) -> str:
    if outcome.failure is not None:
        return f"failed: {outcome.failure.reason}"
    document = outcome.document or {}
    version, dry = document.get("version", "?"), document.get("dry_run", False)
    change = document.get("change")
    if change == "created":
        return f"would create action ({version})" if dry else f"created action ({version})"
    if change == "new_version":
        return f"would save new version {version}" if dry else f"new version {version}"
    if document.get("changed_anything"):
        return f"version {version} unchanged"
    return f"no change ({version})"


def published_words(outcome: TenantOutcome) -> str:
    document = outcome.document
    if outcome.failure is not None or document is None:
        return "—"
    if document.get("published_now"):
        return "would publish" if document.get("dry_run") else "yes"
    return "already" if document.get("status") == "published" else "no (draft)"


def pinned_words(outcome: TenantOutcome) -> str:
    document = outcome.document
    if outcome.failure is not None or document is None or not document.get("bindings"):
        return "—"
    dry = document.get("dry_run", False)
    words = []
    for binding in document["bindings"]:
        slot = f"{binding['flow']}:{binding['trigger']}"
        if binding["change"] == "updated":
            words.append(f"{slot} {binding['from_version']}→{binding['to_version']}")
        elif binding["change"] == "attached":
            words.append(f"{slot} {'would attach' if dry else 'attached'} {binding['to_version']}")
        else:
            words.append(f"{slot} {binding['to_version']} (already)")
    return ", ".join(words)


def render_table(outcomes: list[TenantOutcome], *, dry_run: bool) -> str:
    header = ("tenant", "result", "published", "pinned flows")
    rows = [(o.label, result_words(o), published_words(o), pinned_words(o)) for o in outcomes]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), line(tuple("-" * width for width in widths)), *(line(row) for row in rows)]
    failed = [o for o in outcomes if not o.succeeded]
    for outcome in failed:
        if outcome.failure and outcome.failure.details:
            out.append("")
            out.append(f"{outcome.label}: {outcome.failure.reason}")
            out += [f"    {detail}" for detail in outcome.failure.details]
    out.append("")
    summary = f"{len(outcomes)} tenant(s): {len(outcomes) - len(failed)} succeeded, {len(failed)} failed."
    out.append(f"Dry run, nothing was written. {summary}" if dry_run else summary)
    return "\n".join(out)


def outcomes_as_json(outcomes: list[TenantOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "line": o.line.line_no,
            "url": o.line.base_url,
            "tenant": o.tenant,
            "ok": o.succeeded,
            "result": o.document,
            "error": None
            if o.failure is None
            else {
                "reason": o.failure.reason,
                "status": o.failure.status,
                "code": o.failure.code,
                "details": o.failure.details,
            },
            "retries": o.retried,
        }
        for o in outcomes
    ]
