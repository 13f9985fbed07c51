"""execute_action(): run one action version on the process-wide worker pool and check its result."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from actions_app.compiler.source_map import in_source_terms
from actions_app.runtime.pool import WorkerCrashed, WorkerHung, WorkerPool, default_worker_count
from actions_app.runtime.protocol import clip_error_message, encode_frame, storable
from actions_app.runtime.redaction import Redactor, redactor_for
from actions_app.runtime.results import ERROR_CODES, ExecutionError, ExecutionResult, validate_action_result
from actions_app.triggers import ALLOWED_RESULTS

# The contract lets bindings choose 50–5000 ms; the harness and tests may go a little wider.
MIN_TIMEOUT_MS = 10
MAX_TIMEOUT_MS = 30_000
MIN_MEMORY_LIMIT_MB = 8
# The worker's whole data segment is 1 GiB, about half of it V8's own reservations.
MAX_MEMORY_LIMIT_MB = 256

_pool: WorkerPool | None = None
_pool_lock = threading.Lock()
_test_fault: str | None = None


def _current_pool() -> WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerPool(default_worker_count())
        return _pool


def shutdown_pool() -> None:
    """Stop every worker. The next execute_action() starts a new pool."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and pool.owner_pid == os.getpid():
        pool.close()


def _forget_pool_after_fork() -> None:
    # A forked child (e.g. a pre-forking server) must not share the parent's workers: it would
    # interleave frames on the same pipes. It closes its copies and starts its own pool lazily.
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    if _pool is not None:
        _pool.abandon()
    _pool = None


os.register_at_fork(after_in_child=_forget_pool_after_fork)
atexit.register(shutdown_pool)


def sandbox_ready() -> bool:
    """Whether the pool (started here if need be) has at least one started, live worker process. Runs
    nothing and waits for no worker, so a readiness probe stays cheap while the pool is busy."""
    return _current_pool().has_live_worker()


def worker_pids_for_tests() -> list[int]:
    """The pids of the current pool's workers (starting the pool if needed)."""
    return _current_pool().worker_pids()


def wait_for_idle_workers_for_tests(timeout_seconds: float = 30.0) -> None:
    """Start the pool if need be and wait until every worker has started and none is busy: the
    time limit of an execution counts a wait for a worker, start-up included."""
    pool = _current_pool()
    give_up = time.monotonic() + timeout_seconds
    while not pool.all_idle():
        if time.monotonic() > give_up:
            raise TimeoutError("the action runtime's workers did not all start and settle")
        time.sleep(0.01)


def worker_warm_keys_for_tests() -> dict[int, list[str]]:
    """The isolate keys each worker of the current pool holds warm, by pid."""
    return _current_pool().warm_keys_by_worker()


def inject_fault_for_tests(fault: str) -> None:
    """Make the next execution's worker misbehave: "exit" (dies mid-request) or "hang" (stops answering)."""
    global _test_fault
    if fault not in ("exit", "hang"):
        raise ValueError(fault)
    with _pool_lock:
        _test_fault = fault


def _take_test_fault() -> str | None:
    global _test_fault
    with _pool_lock:
        fault, _test_fault = _test_fault, None
    return fault


def _check_arguments(action_input: dict[str, Any], timeout_ms: int, memory_limit_mb: int) -> str:
    trigger = action_input.get("trigger") if isinstance(action_input, dict) else None
    if not isinstance(trigger, str) or trigger not in ALLOWED_RESULTS:
        raise ValueError(f"action_input['trigger'] must be a trigger slot, got {trigger!r}")
    if not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        raise ValueError(f"timeout_ms must be within {MIN_TIMEOUT_MS}..{MAX_TIMEOUT_MS}, got {timeout_ms}")
    if not MIN_MEMORY_LIMIT_MB <= memory_limit_mb <= MAX_MEMORY_LIMIT_MB:
        raise ValueError(
            f"memory_limit_mb must be within {MIN_MEMORY_LIMIT_MB}..{MAX_MEMORY_LIMIT_MB}, got {memory_limit_mb}"
        )
    return trigger


def execute_action(
    *,
    isolate_key: str,
    compiled_js: str,
    action_input: dict[str, Any],
    timeout_ms: int = 1000,
    memory_limit_mb: int = 64,
    source_map: str | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ExecutionResult:
    """Run `compiled_js` (CommonJS exporting execute) with `action_input` in the sandbox.
    For code compiled from TypeScript pass the compiler's `source_map` ("" when none was kept):
    where an exception came from is then given in the operator's source.

    `isolate_key` names one action version of one tenant; executions with the same key may reuse
    a warm isolate (and that version's module-level variables). Never raises for anything the
    action does: every failure is an ExecutionResult whose `error` says what went wrong.

    `secrets` (name → value) reach the code as `input.secrets`, with this execution's input only,
    never in the compiled module or the warm isolate. Whatever comes back — logs, result, error —
    has every secret value replaced by `[secret NAME]` (runtime.redaction) before it is returned.
    """
    trigger = _check_arguments(action_input, timeout_ms, memory_limit_mb)
    given_secrets = dict(secrets or {})
    request: dict[str, Any] = {
        "op": "execute",
        "isolate_key": isolate_key,
        "compiled_js": compiled_js,
        "action_input": {**action_input, "secrets": given_secrets},
        "timeout_ms": timeout_ms,
        "memory_limit_mb": memory_limit_mb,
    }
    fault = _take_test_fault()
    if fault:
        request["test_fault"] = fault
    # Encoding here, before a worker is taken, turns a non-JSON input into the caller's TypeError.
    frame = encode_frame(request)
    executed = _run(isolate_key, frame, trigger, timeout_ms, source_map)
    if not given_secrets:
        return executed
    return _redacted(executed, redactor_for(given_secrets))


def _redacted(executed: ExecutionResult, redactor: Redactor) -> ExecutionResult:
    if redactor.pattern is None:
        return executed
    error = executed.error
    if error is not None:
        error = ExecutionError(error.code, redactor.text(error.message))
    result = redactor.data(executed.result) if executed.result is not None else None
    return ExecutionResult(result, redactor.logs(executed.logs), executed.duration_ms, error)


def _run(isolate_key: str, frame: bytes, trigger: str, timeout_ms: int, source_map: str | None) -> ExecutionResult:

    started = time.monotonic()
    try:
        reply = _current_pool().run(isolate_key, frame, time_limit_seconds=timeout_ms / 1000)
    except WorkerHung:
        # The worker had not answered by then; the pool deals with it off this thread.
        message = f"Execution exceeded its {timeout_ms} ms time limit."
        return ExecutionResult(None, [], _elapsed_ms(started), ExecutionError("timeout", message))
    except WorkerCrashed as crash:
        return ExecutionResult(None, [], _elapsed_ms(started), ExecutionError("worker_crashed", str(crash)))

    # The worker has made logs and error text storable already (runtime.protocol.storable).
    logs: list[dict[str, str]] = reply["logs"]
    duration_ms = float(reply["duration_ms"])
    if reply["error"] is not None:
        code = str(reply["error"]["code"])
        message = str(reply["error"]["message"])
        if source_map is not None:
            # The location may grow ("... of the compiled JavaScript)"): trim to the limit again.
            message = clip_error_message(in_source_terms(message, source_map))
        return ExecutionResult(
            None, logs, duration_ms, ExecutionError(code if code in ERROR_CODES else "exception", message)
        )
    result_json: str = reply["result_json"]
    returned = json.loads(result_json)
    if "\\u" in result_json:  # JSON.stringify escapes NUL and lone surrogates, and only control characters else
        returned = storable(returned)
    result, problem = validate_action_result(returned, trigger)
    return ExecutionResult(result, logs, duration_ms, problem)


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
