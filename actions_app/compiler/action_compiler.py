"""Type-check a custom action against the Action SDK and emit the CommonJS the sandbox runs."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from actions_app.compiler.results import CompileResult, Diagnostic
from actions_app.compiler.rules import (
    MISSING_EXECUTE_CODE,
    MISSING_EXECUTE_MESSAGE,
    TIMEOUT_CODE,
    check_source_size,
    emits_execute,
    execute_position,
    import_diagnostics,
    neutralize_reference_directives,
)
from actions_app.compiler.sdk_types import sdk_declarations
from actions_app.compiler.tsc import TscMessage, TscTimeoutError, run_tsc

SDK_FILE = "sdk.d.ts"
ACTION_FILE = "action.ts"
SIGNATURE_CHECK_FILE = "check.ts"
EMITTED_ACTION_FILE = Path("out") / "action.js"
_SOURCE_MAPPING_URL = re.compile(r"\n?//# sourceMappingURL=\S*\s*\Z")

EXECUTE_SIGNATURE = "(input: ActionInput) => Promise<ActionResult>"
# A separate module, so the operator's file stays exactly what they wrote and tsc itself explains a wrong
# signature. Line 1 fails when there is no exported execute, line 2 when its type does not fit.
_SIGNATURE_CHECK_SOURCE = f'import {{ execute }} from "./action";\nconst _check: {EXECUTE_SIGNATURE} = execute;\n'


def compile_action(
    source: str, config_schema: dict[str, Any], *, timeout_s: float = 10.0, secret_names: Iterable[str] = ()
) -> CompileResult:
    """Type-check `source` against the SDK for `config_schema` and the action's `secret_names`
    (`input.secrets.NOPE` is a type error naming NOPE) and emit its JavaScript.

    Safe to call from several threads at once: each call works in its own temporary directory.
    Raises CompileLimitError for a source over MAX_SOURCE_BYTES (before tsc runs) and RuntimeError
    when tsc is not installed or fails in a way that says nothing about the source.
    """
    started = time.perf_counter()
    check_source_size(source)
    checked_source, diagnostics = neutralize_reference_directives(source)
    diagnostics.extend(import_diagnostics(source))
    with tempfile.TemporaryDirectory(prefix="action-compile-") as work_dir_name:
        work_dir = Path(work_dir_name)
        _write_text(work_dir / SDK_FILE, sdk_declarations(config_schema, secret_names))
        _write_text(work_dir / ACTION_FILE, checked_source)
        _write_text(work_dir / SIGNATURE_CHECK_FILE, _SIGNATURE_CHECK_SOURCE)
        try:
            messages = run_tsc(work_dir, [SDK_FILE, ACTION_FILE, SIGNATURE_CHECK_FILE], timeout_s=timeout_s)
        except TscTimeoutError:
            message = f"Compilation took longer than {timeout_s:g} s and was stopped. Simplify the types and try again."
            diagnostics.append(Diagnostic(1, 1, message, TIMEOUT_CODE))
            return CompileResult(js="", diagnostics=diagnostics, duration_ms=_milliseconds_since(started))
        emitted_path = work_dir / EMITTED_ACTION_FILE
        js = emitted_path.read_text(encoding="utf-8") if emitted_path.is_file() else ""
        # The sandbox has no files to look the map up in; the map is kept beside the code instead.
        js = _SOURCE_MAPPING_URL.sub("", js)
        source_map = _mappings(emitted_path.with_suffix(".js.map"))
        # Messages such as "File '/tmp/action-compile-x/action.ts' is not a module." name the work dir.
        work_dir_prefixes = [f"{work_dir.resolve()}/", f"{work_dir_name}/"]
    execute_at = execute_position(source)
    for tsc_message in messages:
        diagnostic = _operator_diagnostic(tsc_message, execute_at, work_dir_prefixes)
        if diagnostic.code == MISSING_EXECUTE_CODE and diagnostic in diagnostics:
            continue
        diagnostics.append(diagnostic)
    if not messages and not emits_execute(js):
        diagnostics.append(Diagnostic(*execute_at, MISSING_EXECUTE_MESSAGE, MISSING_EXECUTE_CODE))
    diagnostics.sort(key=lambda diagnostic: (diagnostic.line, diagnostic.column))
    return CompileResult(
        js=js, diagnostics=diagnostics, duration_ms=_milliseconds_since(started), source_map=source_map
    )


def _mappings(map_path: Path) -> str:
    try:
        return str(json.loads(map_path.read_text(encoding="utf-8"))["mappings"])
    except (OSError, ValueError, KeyError):
        return ""


def _operator_diagnostic(
    tsc_message: TscMessage, execute_at: tuple[int, int], work_dir_prefixes: list[str]
) -> Diagnostic:
    """Place one tsc diagnostic in the operator's source, whichever of our files it came from."""
    text = _without_prefixes(tsc_message.text, work_dir_prefixes)
    file_name = _without_prefixes(tsc_message.file, work_dir_prefixes) if tsc_message.file else None
    if file_name is None:
        return Diagnostic(1, 1, text, tsc_message.code)
    if file_name == ACTION_FILE:
        return Diagnostic(tsc_message.line, tsc_message.column, text, tsc_message.code)
    if file_name == SIGNATURE_CHECK_FILE:
        if tsc_message.line == 1:
            return Diagnostic(*execute_at, MISSING_EXECUTE_MESSAGE, MISSING_EXECUTE_CODE)
        return Diagnostic(*execute_at, f"execute must have the signature {EXECUTE_SIGNATURE}: {text}", tsc_message.code)
    # The SDK is generated by us; an error there is our bug, but the operator still needs to see why saving fails.
    return Diagnostic(
        1,
        1,
        f"The generated Action SDK ({file_name} line {tsc_message.line}, column {tsc_message.column}) "
        f"has an error; please report it: {text}",
        tsc_message.code,
    )


def _without_prefixes(text: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        text = text.replace(prefix, "")
    return text


def _write_text(path: Path, text: str) -> None:
    # newline="" keeps the operator's line endings, so tsc's line numbers match their editor's.
    # errors="replace" only matters for lone surrogates, which JSON can carry but UTF-8 cannot.
    with path.open("w", encoding="utf-8", errors="replace", newline="") as file:
        file.write(text)


def _milliseconds_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
