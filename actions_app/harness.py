"""The test harness: run a draft or a saved version against an operator's sample input."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actions_app.compiler import Diagnostic, compile_action
from actions_app.models import ActionVersion
from actions_app.sample_inputs import InvalidSampleInput, harness_input
from actions_app.schema_forms import validate_config
from tenants.models import Tenant

if TYPE_CHECKING:
    from actions_app.runtime import ExecutionResult

DEFAULT_TIMEOUT_MS = 1000


@dataclass
class HarnessRun:
    """What the harness shows: the execution, or why nothing ran."""

    execution: ExecutionResult | None = None
    input_errors: dict[str, list[str]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    action_input: dict[str, Any] | None = None

    @property
    def ran(self) -> bool:
        return self.execution is not None


def parse_input_json(raw: str) -> Any:
    """Parse the harness's input text, or raise InvalidSampleInput naming line and column."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidSampleInput(
            f"Not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}."
        ) from error


def run_in_harness(
    *,
    tenant: Tenant,
    action_slug: str,
    raw_input: str,
    config: dict[str, Any],
    config_schema: dict[str, Any],
    version: ActionVersion | None = None,
    draft_source: str | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> HarnessRun:
    """Run `version`, or compile and run `draft_source`, with the operator's input and config."""
    run = HarnessRun()
    try:
        edited = parse_input_json(raw_input)
        run.action_input = harness_input(
            edited,
            tenant_slug=tenant.slug,
            action_slug=action_slug,
            version_label=version.version if version else "draft",
            config=config,
        )
    except InvalidSampleInput as error:
        run.input_errors["input"] = [str(error)]
    config_errors = validate_config(config_schema, config)
    if config_errors:
        run.input_errors["config"] = [f"{path or 'config'}: {' '.join(msgs)}" for path, msgs in config_errors.items()]
    if run.input_errors or run.action_input is None:
        return run

    if version is not None:
        compiled_js = version.compiled_js
        isolate_key = f"{tenant.pk}:{version.pk}:{version.checksum}"
    else:
        compiled = compile_action(draft_source or "", config_schema)
        if not compiled.js:
            run.diagnostics = compiled.diagnostics
            return run
        # A draft with type errors still runs: the harness is where operators find out why.
        run.diagnostics = compiled.diagnostics
        compiled_js = compiled.js
        isolate_key = f"{tenant.pk}:draft:{hashlib.sha256(compiled_js.encode()).hexdigest()[:20]}"
    # Imported here so pages that never run code do not pull in the V8 worker pool.
    from actions_app.runtime import execute_action

    run.execution = execute_action(
        isolate_key=isolate_key, compiled_js=compiled_js, action_input=run.action_input, timeout_ms=timeout_ms
    )
    return run
