"""The worker pool behind execute_action(): warm isolates per key, crash and hang isolation,
concurrent callers, per-binding time limits, captured logs.

Plain Python tests: no database.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from actions_app.runtime import ExecutionResult, execute_action, shutdown_pool
from actions_app.runtime import executor as runtime_executor

PRELUDE = '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.execute = execute;\n'

COUNTER_ACTION = (
    PRELUDE
    + """
let executions = 0;
async function execute(input) {
    executions++;
    return { kind: "continue", state: { executions } };
}
"""
)

ECHO_ACTION = (
    PRELUDE
    + """
async function execute(input) {
    await Promise.resolve();
    return { kind: "continue", state: { user: input.user.id, ip: input.request.ip } };
}
"""
)


def action_input(user_id: str = "user-1", trigger: str = "login.post-auth") -> dict:
    return {
        "trigger": trigger,
        "user": {"id": user_id, "email": "ada@example.com", "email_verified": True, "groups": [], "app_metadata": {}},
        "request": {"ip": "203.0.113.7", "user_agent": "pytest", "hostname": "login.example.com"},
        "state": {},
        "context": {"tenant": "acme", "flow": "login", "risk": {"score": 0}},
    }


def fresh_key(label: str = "pool") -> str:
    return f"test-tenant:{uuid.uuid4()}:{label}"


def run(source: str, isolate_key: str, **limits: Any) -> ExecutionResult:
    return execute_action(isolate_key=isolate_key, compiled_js=source, action_input=action_input(), **limits)


def assert_runs_normally() -> None:
    execution = run(ECHO_ACTION, fresh_key())
    assert execution.error is None, execution.error
    assert execution.result == {"kind": "continue", "state": {"user": "user-1", "ip": "203.0.113.7"}}


@pytest.fixture(autouse=True)
def runtime_pool() -> Iterator[None]:
    runtime_executor.wait_for_idle_workers_for_tests()  # start-up would count in a time limit
    yield
    runtime_executor._take_test_fault()  # a test that failed early must not leave a fault armed
    shutdown_pool()


def executions_of(execution: ExecutionResult) -> int:
    assert execution.error is None, execution.error
    assert execution.result is not None
    return int(execution.result["state"]["executions"])


def test_it_keeps_module_state_warm_per_isolate_key() -> None:
    first_key, second_key = fresh_key("a"), fresh_key("b")

    counts_a = [executions_of(run(COUNTER_ACTION, first_key)) for _ in range(3)]
    count_b = executions_of(run(COUNTER_ACTION, second_key))
    count_a_again = executions_of(run(COUNTER_ACTION, first_key))

    assert counts_a == [1, 2, 3]
    assert count_b == 1
    assert count_a_again == 4


def test_it_starts_a_fresh_isolate_when_the_code_under_a_key_changes() -> None:
    key = fresh_key()
    run(COUNTER_ACTION, key)
    changed = COUNTER_ACTION.replace("executions++;", "executions += 10;")

    assert executions_of(run(changed, key)) == 10


def test_it_runs_with_the_configured_number_of_workers(single_worker: None) -> None:
    assert_runs_normally()

    assert len(runtime_executor.worker_pids_for_tests()) == 1


def test_it_isolates_a_worker_that_dies_mid_execution() -> None:
    assert_runs_normally()
    pids_before = set(runtime_executor.worker_pids_for_tests())

    runtime_executor.inject_fault_for_tests("exit")
    crashed = run(ECHO_ACTION, fresh_key())

    assert crashed.error is not None
    assert crashed.error.code == "worker_crashed"
    assert "exit status 70" in crashed.error.message
    assert crashed.result is None
    assert_runs_normally()
    pids_after = set(runtime_executor.worker_pids_for_tests())
    assert len(pids_after) == len(pids_before)
    assert len(pids_after - pids_before) == 1


def test_it_isolates_a_worker_killed_by_a_signal_mid_execution(single_worker: None) -> None:
    assert_runs_normally()
    [pid] = runtime_executor.worker_pids_for_tests()
    outcome: list[ExecutionResult] = []
    spinner = threading.Thread(
        target=lambda: outcome.append(
            run(PRELUDE + "async function execute() { while (true) {} }", fresh_key(), timeout_ms=5000)
        )
    )

    spinner.start()
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)  # what the kernel's OOM killer would do
    spinner.join(timeout=10)

    [killed] = outcome
    assert killed.error is not None
    assert killed.error.code == "worker_crashed"
    assert "SIGKILL" in killed.error.message
    assert_runs_normally()
    assert runtime_executor.worker_pids_for_tests() != [pid]


def test_it_replaces_workers_that_died_while_idle() -> None:
    assert_runs_normally()
    for pid in runtime_executor.worker_pids_for_tests():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)

    assert_runs_normally()
    assert_runs_normally()


def test_it_kills_and_replaces_a_worker_that_stops_answering() -> None:
    assert_runs_normally()
    pids_before = set(runtime_executor.worker_pids_for_tests())

    runtime_executor.inject_fault_for_tests("hang")
    started = time.monotonic()
    hung = run(ECHO_ACTION, fresh_key(), timeout_ms=50)
    elapsed = time.monotonic() - started

    assert hung.error is not None
    assert hung.error.code == "timeout"
    assert hung.error.message == "Execution exceeded its 50 ms time limit."
    assert elapsed < 5
    assert_runs_normally()
    # The caller was answered at once; the silent worker is replaced off the caller's thread.
    replaced_by = time.monotonic() + 10
    while not set(runtime_executor.worker_pids_for_tests()) - pids_before and time.monotonic() < replaced_by:
        time.sleep(0.05)
    assert len(set(runtime_executor.worker_pids_for_tests()) - pids_before) == 1


def test_it_serves_eight_threads_at_once() -> None:
    keys = [fresh_key(f"shared-{index}") for index in range(3)]

    def call(index: int) -> tuple[str, ExecutionResult]:
        user_id = f"user-{index}"
        execution = execute_action(
            isolate_key=keys[index % len(keys)] if index % 2 else fresh_key(),
            compiled_js=ECHO_ACTION,
            action_input=action_input(user_id),
        )
        return user_id, execution

    with ThreadPoolExecutor(max_workers=8) as clients:
        outcomes = list(clients.map(call, range(64)))

    assert len(outcomes) == 64
    for user_id, execution in outcomes:
        assert execution.error is None, execution.error
        assert execution.result == {"kind": "continue", "state": {"user": user_id, "ip": "203.0.113.7"}}


def test_it_honours_each_bindings_time_limit() -> None:
    # Busy for 300 ms, then answers: too slow for a 50 ms binding, fine for a 2000 ms one.
    slow_action = (
        PRELUDE
        + """
    async function execute(input) {
        await null;
        const until = Date.now() + 300;
        while (Date.now() < until) {}
        return { kind: "continue" };
    }
    """
    )

    started = time.monotonic()
    strict = run(slow_action, fresh_key(), timeout_ms=50)
    strict_elapsed = time.monotonic() - started
    relaxed = run(slow_action, fresh_key(), timeout_ms=2000)

    assert strict.error is not None
    assert strict.error.code == "timeout"
    assert strict.error.message == "Execution exceeded its 50 ms time limit."
    # Generous upper bounds: the property is "cut off, not run to the end", and CI machines are busy.
    assert 50 <= strict.duration_ms < 1000
    assert strict_elapsed < 2.5
    assert relaxed.error is None, relaxed.error
    assert relaxed.result == {"kind": "continue"}
    assert relaxed.duration_ms >= 300


def test_it_honours_each_bindings_memory_limit() -> None:
    # About 40 MB of live heap.
    hungry_action = (
        PRELUDE
        + """
    async function execute(input) {
        const rows = [];
        for (let i = 0; i < 400000; i++) rows.push({ i, label: "row " + i });
        return { kind: "continue", state: { rows: rows.length } };
    }
    """
    )

    tight = run(hungry_action, fresh_key(), memory_limit_mb=16)
    roomy = run(hungry_action, fresh_key(), memory_limit_mb=256)

    assert tight.error is not None
    assert tight.error.code == "memory"
    assert roomy.error is None, roomy.error


def test_it_captures_logs_in_order_with_levels() -> None:
    logging_action = (
        PRELUDE
        + """
    console.log("module loaded");
    async function execute(input) {
        console.log("plain", 42, true, null, undefined);
        console.info({ user: input.user.id, groups: [] });
        await null;
        console.warn("careful:", new TypeError("odd"));
        console.error("failed", [1, "two"]);
        console.debug("details", 10n);
        return { kind: "continue" };
    }
    """
    )
    key = fresh_key()

    first = run(logging_action, key)
    second = run(logging_action, key)

    assert first.logs == [
        {"level": "log", "message": "module loaded"},
        {"level": "log", "message": "plain 42 true null undefined"},
        {"level": "info", "message": '{"user":"user-1","groups":[]}'},
        {"level": "warn", "message": "careful: TypeError: odd"},
        {"level": "error", "message": 'failed [1,"two"]'},
        {"level": "log", "message": "details 10n"},
    ]
    # The module ran once; the warm isolate's second execution has its own logs only.
    assert second.logs == first.logs[1:]


def test_it_reports_the_duration_of_each_execution() -> None:
    execution = run(ECHO_ACTION, fresh_key())

    assert 0 < execution.duration_ms < 1000


def test_it_starts_a_new_pool_after_shutdown() -> None:
    assert_runs_normally()
    shutdown_pool()

    assert runtime_executor._pool is None
    runtime_executor.wait_for_idle_workers_for_tests()
    assert_runs_normally()


@pytest.mark.parametrize(
    "arguments",
    [
        {"action_input": {"trigger": "login.nope"}},
        {"action_input": action_input(), "timeout_ms": 0},
        {"action_input": action_input(), "timeout_ms": 60_000},
        {"action_input": action_input(), "memory_limit_mb": 4096},
    ],
)
def test_it_refuses_arguments_outside_the_contract(arguments: dict) -> None:
    with pytest.raises(ValueError):
        execute_action(isolate_key=fresh_key(), compiled_js=ECHO_ACTION, **arguments)


def _data_segment_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmData:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the workers' data segment from /proc")
def test_a_worker_left_over_its_memory_limit_is_replaced_and_warm_isolates_work_again(
    single_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_runs_normally()
    (first_pid,) = runtime_executor.worker_pids_for_tests()
    fresh_worker_mb = _data_segment_mb(first_pid)
    # A soft limit just above what a fresh worker holds, so the memory the bomb below leaves
    # behind in the allocator (it is not handed back) puts the worker over it for good.
    shutdown_pool()
    monkeypatch.setenv("ACTIONS_RUNTIME_SOFT_LIMIT_MB", str(fresh_worker_mb + 40))
    runtime_executor.wait_for_idle_workers_for_tests()
    assert_runs_normally()
    (bloated_pid,) = runtime_executor.worker_pids_for_tests()
    bomb = PRELUDE + "async function execute(input) { const kept = []; while (true) kept.push({ n: kept.length }); }"
    # A generous time limit: on a busy machine filling 128 MiB can take more than the default second.
    assert run(bomb, fresh_key(), memory_limit_mb=128, timeout_ms=5000).error.code == "memory"  # type: ignore[union-attr]

    # The worker evicts everything after that reply and asks to be replaced in the next one; the
    # pool replaces it off the caller's thread.
    assert_runs_normally()
    replaced_by = time.monotonic() + 10
    while runtime_executor.worker_pids_for_tests() == [bloated_pid] and time.monotonic() < replaced_by:
        time.sleep(0.05)
    (replacement_pid,) = runtime_executor.worker_pids_for_tests()
    assert replacement_pid != bloated_pid
    key = fresh_key()
    assert [executions_of(run(COUNTER_ACTION, key)) for _ in range(3)] == [1, 2, 3]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the workers' data segment from /proc")
def test_a_worker_that_starts_over_a_low_soft_limit_is_kept(
    single_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Below what the worker takes at start (~37 MB): every isolate is evicted after use, but
    # replacing the worker could not help (a fresh one starts over the limit too), so the same
    # process keeps serving.
    monkeypatch.setenv("ACTIONS_RUNTIME_SOFT_LIMIT_MB", "20")
    shutdown_pool()  # the fixture's worker started with the default limit
    runtime_executor.wait_for_idle_workers_for_tests()
    assert_runs_normally()
    (pid,) = runtime_executor.worker_pids_for_tests()
    assert _data_segment_mb(pid) > 20
    key = fresh_key()
    assert [executions_of(run(COUNTER_ACTION, key)) for _ in range(4)] == [1, 1, 1, 1]
    assert runtime_executor.worker_pids_for_tests() == [pid]


def _vmdata_from_proc() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmData:"))
    return int(line.split()[1]) * 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_the_data_segment_reading_follows_the_process_after_a_fork() -> None:
    from actions_app.runtime.worker import data_segment_bytes

    assert data_segment_bytes() == _vmdata_from_proc()  # also opens the file in this process
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:  # whatever happens, the child never goes on to run the rest of the test session
            grown = bytearray(64 * 1024 * 1024)  # only the child's data segment grows
            os.write(write_end, f"{data_segment_bytes()} {_vmdata_from_proc()} {len(grown)}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    reported, actual, _ = (int(part) for part in os.read(read_end, 200).split())
    os.close(read_end)
    assert reported == actual
    assert actual >= data_segment_bytes() + 60 * 1024 * 1024
