"""The test harness: run a draft or a saved version against an operator's sample input, and, for a
replay, set that run beside the recorded execution whose input it reused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ValidationError

from actions_app.compiler import Diagnostic, compile_action
from actions_app.models import ActionVersion
from actions_app.sample_inputs import InvalidSampleInput, given_test_secrets, harness_input
from actions_app.schema_forms import validate_binding_config
from actions_app.secrets import secrets_for_execution
from core.json_text import parse_json_text
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
    """Parse the harness's input text as any JSON typed into a form is (line and column of a
    syntax error, no NaN, nothing nested too deeply), or raise InvalidSampleInput saying why."""
    try:
        return parse_json_text(raw)
    except ValidationError as error:
        raise InvalidSampleInput(" ".join(error.messages)) from error


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
    action_id: int | None = None,
) -> HarnessRun:
    """Run `version`, or compile and run `draft_source`, with the operator's input and config.

    The code gets the action's real secrets as `input.secrets` (the action of `version`, or
    `action_id` for a draft of a saved action; a new action has none), except where the input's
    optional `secrets` object gives a test value for a name: the test value wins, for that name.
    Every value given is redacted from what comes back, test values too."""
    run = HarnessRun()
    secrets: dict[str, str] = {}
    try:
        edited = parse_input_json(raw_input)
        secrets = given_test_secrets(edited)
        run.action_input = harness_input(
            edited,
            tenant_slug=tenant.slug,
            action_slug=action_slug,
            version_label=version.version if version else "draft",
            config=config,
        )
    except InvalidSampleInput as error:
        run.input_errors["input"] = [str(error)]
    template = version.action.template_slug if version is not None else None  # a draft is a custom action's
    config_errors = validate_binding_config(config_schema, config, template=template)
    if config_errors:
        run.input_errors["config"] = [f"{path or 'config'}: {' '.join(msgs)}" for path, msgs in config_errors.items()]
    if run.input_errors or run.action_input is None:
        return run

    owner_id = version.action_id if version is not None else action_id
    secrets = {**(secrets_for_execution(owner_id) if owner_id is not None else {}), **secrets}
    if version is not None:
        compiled_js, source_map = version.compiled_js, version.source_map
        isolate_key = f"{tenant.pk}:{version.pk}:{version.checksum}"
    else:
        compiled = compile_action(draft_source or "", config_schema, secret_names=sorted(secrets))
        if not compiled.js:
            run.diagnostics = compiled.diagnostics
            return run
        # A draft with type errors still runs: the harness is where operators find out why.
        run.diagnostics = compiled.diagnostics
        compiled_js, source_map = compiled.js, compiled.source_map
        isolate_key = f"{tenant.pk}:draft:{hashlib.sha256(compiled_js.encode()).hexdigest()[:20]}"
    # Imported here so pages that never run code do not pull in the V8 worker pool.
    from actions_app.runtime import execute_action

    run.execution = execute_action(
        isolate_key=isolate_key,
        compiled_js=compiled_js,
        action_input=run.action_input,
        timeout_ms=timeout_ms,
        source_map=source_map,
        secrets=secrets,
    )
    return run


class RecordedExecution(Protocol):
    """What a replay reads of a recorded execution (flows_app's ActionExecution)."""

    action_version: str
    outcome: str
    duration_ms: float
    error_code: str
    error_message: str
    logs: Any
    result: Any


@dataclass(frozen=True)
class RunSide:
    """One column of a replay: what one run of the action did."""

    label: str
    outcome: str  # continue / block / demand_mfa / redirect, or error
    duration_ms: float
    error_code: str = ""
    error_message: str = ""
    logs: list[dict[str, str]] = field(default_factory=list)
    result: Any = None

    @classmethod
    def recorded(cls, execution: RecordedExecution) -> RunSide:
        return cls(
            label=f"version {execution.action_version}",
            outcome=execution.outcome,
            duration_ms=execution.duration_ms,
            error_code=execution.error_code,
            error_message=execution.error_message,
            logs=list(execution.logs or []),
            result=execution.result,
        )

    @classmethod
    def from_harness(cls, executed: ExecutionResult, label: str) -> RunSide:
        return cls(
            label=label,
            outcome="error" if executed.error else str((executed.result or {}).get("kind", "error")),
            duration_ms=executed.duration_ms,
            error_code=executed.error.code if executed.error else "",
            error_message=executed.error.message if executed.error else "",
            logs=list(executed.logs),
            result=executed.result,
        )


@dataclass(frozen=True)
class RunDifference:
    """One way the new run differs from the recorded one, said in words (never colour alone)."""

    aspect: str  # outcome, error, result or logs: the rows to flag in both columns
    summary: str


@dataclass(frozen=True)
class ReplayComparison:
    """A recorded execution beside the harness run of its input (None until the operator runs)."""

    recorded: RunSide
    replayed: RunSide | None = None

    @property
    def differences(self) -> list[RunDifference]:
        old, new = self.recorded, self.replayed
        if new is None:
            return []
        found = []
        if old.outcome != new.outcome:
            found.append(RunDifference("outcome", f"Outcome changed: {old.outcome} → {new.outcome}"))
        if old.error_code and not new.error_code:
            found.append(RunDifference("error", f"Error gone: the recorded run failed with {old.error_code}"))
        elif new.error_code and not old.error_code:
            found.append(RunDifference("error", f"Error appeared: {new.error_code}: {new.error_message}"))
        elif (old.error_code, old.error_message) != (new.error_code, new.error_message):
            found.append(RunDifference("error", f"Error changed: {old.error_code} → {new.error_code}"))
        if old.outcome == new.outcome and not old.error_code and not new.error_code and old.result != new.result:
            found.append(RunDifference("result", "Result changed: same kind, different details"))
        if old.logs != new.logs:
            found.append(RunDifference("logs", "Console output changed"))
        return found

    @property
    def changed_aspects(self) -> set[str]:
        return {difference.aspect for difference in self.differences}


def replay_comparison(execution: RecordedExecution, run: HarnessRun | None, target: str) -> ReplayComparison:
    """The recorded execution beside `run`, the harness run of `target` ("draft" or a version)."""
    replayed = None
    if run is not None and run.execution is not None:
        label = "the unsaved draft" if target == "draft" else f"version {target}"
        replayed = RunSide.from_harness(run.execution, label)
    return ReplayComparison(RunSide.recorded(execution), replayed)
