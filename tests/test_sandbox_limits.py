"""The sandbox's limits hold against the whole family of each way around them (issue 13):
memory that V8's heap limit does not see, error text of any size, built-ins V8 cannot interrupt,
and state that built-ins keep between executions.

Plain Python tests against real V8 in real worker processes: no database, no mocks. What is
checked is what a caller notices: the error code and message, how long the answer took, and
whether the worker (and another action's warm isolate on it) is still there afterwards.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from actions_app.runtime import ExecutionResult, execute_action, shutdown_pool
from actions_app.runtime import executor as runtime_executor
from actions_app.runtime.pool import WorkerPool
from actions_app.runtime.worker import CLOSE_STUCK_SECONDS

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

# The answer must arrive within the time limit plus this share of it (issue 13, defect 4).
ANSWER_SLACK = 0.10


def action_input(email: str = "ada@example.com", trigger: str = "login.post-auth") -> dict[str, Any]:
    return {
        "trigger": trigger,
        "user": {"id": email, "email": email, "email_verified": True, "groups": [], "app_metadata": {}},
        "request": {"ip": "203.0.113.7", "user_agent": "pytest", "hostname": "login.example.com"},
        "state": {},
        "context": {"tenant": "acme", "flow": "login", "risk": {"score": 0}},
    }


def fresh_key(label: str = "limits") -> str:
    return f"test-tenant:{uuid.uuid4()}:{label}"


def execute_body(body: str) -> str:
    return PRELUDE + f"async function execute(input) {{\n{body}\n}}\n"


def run(source: str, isolate_key: str | None = None, email: str = "ada@example.com", **limits: Any) -> ExecutionResult:
    return execute_action(
        isolate_key=isolate_key or fresh_key(), compiled_js=source, action_input=action_input(email), **limits
    )


def timed(
    source: str, isolate_key: str | None = None, email: str = "ada@example.com", **limits: Any
) -> tuple[ExecutionResult, float]:
    """Run `source` (on a fresh key unless given); also return how long the caller waited for its
    answer, in milliseconds, from where the contract's time limit starts: the call into the pool."""
    entered: list[float] = []
    pool_run = WorkerPool.run

    def run_noting_entry(pool: WorkerPool, *arguments: Any, **keywords: Any) -> dict[str, Any]:
        entered.append(time.monotonic())
        return pool_run(pool, *arguments, **keywords)

    with mock.patch.object(WorkerPool, "run", run_noting_entry):
        execution = run(source, isolate_key, email, **limits)
    return execution, (time.monotonic() - entered[0]) * 1000


def assert_answered_in_time(waited_ms: float, limit_ms: int, execution: ExecutionResult) -> None:
    allowed_ms = limit_ms * (1 + ANSWER_SLACK)
    assert waited_ms <= allowed_ms, (
        f"answered {waited_ms - limit_ms:.1f} ms past the {limit_ms} ms limit ({waited_ms:.1f} ms, "
        f"{allowed_ms:.0f} ms allowed; duration {execution.duration_ms:.1f} ms): {execution.error}"
    )


def state_of(execution: ExecutionResult) -> dict[str, Any]:
    assert execution.error is None, execution.error
    assert execution.result is not None
    return dict(execution.result["state"])


def executions_of(execution: ExecutionResult) -> int:
    return int(state_of(execution)["executions"])


@pytest.fixture(scope="module", autouse=True)
def runtime_pool() -> Iterator[None]:
    runtime_executor.wait_for_idle_workers_for_tests()  # start-up would count in a time limit
    yield
    shutdown_pool()


@pytest.fixture
def single_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """One worker, so that everything a test runs shares it; yields its pid."""
    shutdown_pool()
    monkeypatch.setenv("ACTIONS_RUNTIME_WORKERS", "1")
    runtime_executor.wait_for_idle_workers_for_tests()  # start-up would count in a time limit
    (pid,) = runtime_executor.worker_pids_for_tests()
    yield pid
    shutdown_pool()


# ---- defect 5: no state crosses executions through built-ins -------------------------------------

REGEXP_STATICS = ["input", "$_", "lastMatch", "$&", "lastParen", "$+", "leftContext", "$`", "rightContext", "$'"]
REGEXP_STATICS += [f"${digit}" for digit in range(1, 10)]

SIGN_IN_ACTION = (
    PRELUDE
    + """
const STATICS = REGEXP_STATICS;
async function execute(input) {
    const seen = {};
    for (const name of STATICS) {
        const value = RegExp[name];
        if (value !== undefined && value !== "") seen[name] = String(value);
    }
    const planted = {};
    for (const name of ["input", "$_", "lastMatch", "$1"]) {
        try { RegExp[name] = "planted by " + input.user.email; planted[name] = "succeeded"; }
        catch (error) { planted[name] = error.name; }
    }
    let recompiled;
    try { const pattern = /x/; pattern.compile("y"); recompiled = pattern.source; }
    catch (error) { recompiled = error.name; }
    const [, name, domain] = /^(.+)@(.+)$/.exec(input.user.email);
    "another " + input.user.email.replace(/(\\w+)@/, "$1 at ");
    return { kind: "continue", state: { seen, planted, recompiled, domain, name } };
}
""".replace("REGEXP_STATICS", json.dumps(REGEXP_STATICS))
)


def test_a_sign_in_does_not_see_the_previous_users_regexp_match() -> None:
    key = fresh_key("sign-in")

    first = state_of(run(SIGN_IN_ACTION, key, email="ada@example.com"))
    second = state_of(run(SIGN_IN_ACTION, key, email="bob@example.org"))

    assert first["seen"] == {}
    assert second["seen"] == {}, "the second sign-in read what the first one matched or planted"
    assert set(first["planted"].values()) == {"TypeError"}
    assert second["domain"] == "example.org"  # matching itself still works
    assert first["recompiled"] == "TypeError"  # RegExp.prototype.compile is gone


def test_regexp_statics_are_gone_from_the_constructor() -> None:
    probe = execute_body("""
    const names = Object.getOwnPropertyNames(RegExp).filter((name) => !["length", "name", "prototype", "escape"]
        .includes(name));
    return { kind: "continue", state: { names, compile: typeof RegExp.prototype.compile } };
    """)

    assert state_of(run(probe)) == {"names": [], "compile": "undefined"}


# ---- defect 3: error text of any size comes back short -------------------------------------------

# An engine-made block reason is "<slug> failed: <message>"; slugs have up to 80 characters and
# reasons up to 1,000, as returned reasons do.
MAX_ERROR_MESSAGE_CHARS = 1000 - len(" failed: ") - 80
HUGE = "20 * 2 ** 20"


@pytest.mark.parametrize(
    ("body", "starts_with"),
    [
        (f"throw new Error('x'.repeat({HUGE}));", "Uncaught Error: xxxx"),
        # Beyond a 32 MiB reply frame (and beyond what one `repeat` may build under a 64 MiB limit).
        ("throw new Error('x'.repeat(20 * 2 ** 20) + 'x'.repeat(20 * 2 ** 20));", "Uncaught Error: xxxx"),
        ("throw new Error('é\\u{1F600}'.repeat(2 ** 22));", "Uncaught Error: é\U0001f600"),
        (f"const e = new TypeError('short'); e.name = 'N'.repeat({HUGE}); throw e;", "Uncaught NNNN"),
        (f"return Promise.reject('s'.repeat({HUGE}));", "Uncaught non-Error value: ssss"),
        (f"throw {{ blob: 'b'.repeat({HUGE}) }};", 'Uncaught non-Error value: {"blob":"bbbb'),
        (f"throw {{ toString() {{ return 't'.repeat({HUGE}); }}, toJSON() {{ throw 1; }} }};", "Uncaught non-Error"),
        (f"throw new AggregateError([new Error('a'.repeat({HUGE}))], 'm'.repeat({HUGE}));", "Uncaught AggregateError"),
        (f"throw new Error('short', {{ cause: 'c'.repeat({HUGE}) }});", "Uncaught Error: short"),
        ("throw { get name() { throw new Error('no'); } };", "Uncaught non-Error value"),
        (f"await null; throw new RangeError('r'.repeat({HUGE}));", "Uncaught RangeError: rrrr"),
    ],
    ids=[
        "error-message",
        "message-over-a-frame",
        "two-byte-message",
        "error-name",
        "rejected-string",
        "thrown-object",
        "to-string",
        "aggregate-error",
        "cause",
        "throwing-getter",
        "after-await",
    ],
)
def test_thrown_text_of_any_size_comes_back_short(body: str, starts_with: str) -> None:
    pids = runtime_executor.worker_pids_for_tests()

    execution = run(execute_body(body), timeout_ms=5000)

    assert execution.error is not None
    assert execution.error.code == "exception", execution.error
    assert execution.error.message.startswith(starts_with), execution.error.message[:200]
    assert len(execution.error.message) <= MAX_ERROR_MESSAGE_CHARS
    assert runtime_executor.worker_pids_for_tests() == pids  # the worker did not die of it


def test_a_shortened_error_still_says_where_it_was_thrown() -> None:
    source = PRELUDE + "async function execute(input) {\n  throw new Error('x'.repeat(2 ** 20));\n}\n"

    execution = run(source)

    assert execution.error is not None
    assert execution.error.message.endswith("(line 5, column 9)"), execution.error.message[-80:]
    assert "…" in execution.error.message
    assert len(execution.error.message) <= MAX_ERROR_MESSAGE_CHARS


def test_a_huge_module_initialisation_error_comes_back_short() -> None:
    source = PRELUDE + "throw new SyntaxError('s'.repeat(20 * 2 ** 20));\nasync function execute() {}\n"

    execution = run(source)

    assert execution.error is not None
    assert execution.error.code == "exception"
    assert execution.error.message.startswith("Module initialisation threw SyntaxError: sss")
    assert len(execution.error.message) <= MAX_ERROR_MESSAGE_CHARS


# ---- defect 4: the answer is there by the time limit plus 10 %, whatever the code does -----------

# Long enough that a busy machine's scheduling delays stay well inside the 10 %.
STRIKE_TIMEOUT_MS = 500


def striking_action(setup: str, strike: str) -> str:
    """An action whose first execution prepares (with a generous limit) and whose later ones
    strike: the strike is then a single call that V8 cannot interrupt."""
    return (
        PRELUDE
        + f"""
let prepared = null;
async function execute(input) {{
    if (prepared === null) {{
        prepared = (() => {{ {setup} }})();
        return {{ kind: "continue" }};
    }}
    {strike}
    return {{ kind: "continue" }};
}}
"""
    )


SLOW_BUILT_INS = {
    "typed-array-sort": striking_action(
        "const a = new Float64Array(2 ** 23);\n"
        "for (let i = 0; i < a.length; i++) a[i] = (i * 2654435761) % 1000003;\nreturn a;",
        "prepared.slice().sort();",
    ),
    "json-parse": striking_action(
        "const t = '[' + '{\"a\":1},'.repeat(2 ** 23) + '1]';\nt.indexOf('x');\nreturn t;", "JSON.parse(prepared);"
    ),
    "date-time-format-loop": striking_action("return true;", "while (true) new Intl.DateTimeFormat('en');"),
    "microtasks-after-the-result": striking_action(
        "return true;",
        "Promise.resolve().then(async () => {\n"
        "    const until = Date.now() + 2000;\n"
        "    while (Date.now() < until) await null;\n"
        "});",
    ),
}


# Intl.DateTimeFormat's constructor does not heed V8's termination request, and a loop of them
# took ~450 MB of ICU memory outside the heap: it is stopped by the budget of Intl objects per
# execution instead, which ends it in `memory` (issue 13, defect 2).
STRUCK_CODES = {"date-time-format-loop": "memory"}


@pytest.mark.parametrize("name", list(SLOW_BUILT_INS))
def test_a_built_in_v8_cannot_interrupt_is_answered_on_time_and_costs_no_warm_isolate(
    name: str, single_worker: int
) -> None:
    warm_key, hostile_key = fresh_key("warm"), fresh_key(name)
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 1
    prepared = run(SLOW_BUILT_INS[name], hostile_key, timeout_ms=5000, memory_limit_mb=256)
    assert prepared.error is None, prepared.error

    struck, waited_ms = timed(SLOW_BUILT_INS[name], hostile_key, timeout_ms=STRIKE_TIMEOUT_MS, memory_limit_mb=256)

    assert struck.error is not None
    assert struck.error.code == STRUCK_CODES.get(name, "timeout"), struck.error
    if struck.error.code == "timeout":
        assert struck.error.message == f"Execution exceeded its {STRIKE_TIMEOUT_MS} ms time limit."
    assert_answered_in_time(waited_ms, STRIKE_TIMEOUT_MS, struck)
    assert struck.duration_ms <= STRIKE_TIMEOUT_MS * (1 + ANSWER_SLACK), struck.duration_ms
    # The worker answered and went on: the other action's isolate is still warm on it.
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 2
    assert runtime_executor.worker_pids_for_tests() == [single_worker]


def test_nothing_queued_by_one_execution_runs_during_the_next() -> None:
    source = (
        PRELUDE
        + """
let ticks = 0;
let executions = 0;
async function execute(input) {
    executions++;
    if (input.user.email === "first@example.com") {
        const spin = () => { ticks++; return Promise.resolve().then(spin); };
        spin();
        return { kind: "continue" };
    }
    const before = ticks;
    await null; await null; await null;
    return { kind: "continue", state: { executions, ticks, grew: ticks - before } };
}
"""
    )
    key = fresh_key("microtasks")
    runtime_executor.wait_for_idle_workers_for_tests()  # start-up would count in a time limit

    first, waited_ms = timed(source, key, email="first@example.com", timeout_ms=STRIKE_TIMEOUT_MS)
    second = run(source, key, email="second@example.com")

    assert first.error is not None
    # The chain of promises also grows the heap: whichever limit ends it first.
    assert first.error.code in ("timeout", "memory"), first.error
    assert_answered_in_time(waited_ms, STRIKE_TIMEOUT_MS, first)
    assert state_of(second) == {"executions": 1, "ticks": 0, "grew": 0}  # a fresh isolate


def test_a_worker_that_stops_answering_is_answered_for_on_time_and_replaced(single_worker: int) -> None:
    runtime_executor.inject_fault_for_tests("hang")

    execution, waited_ms = timed(COUNTER_ACTION, timeout_ms=STRIKE_TIMEOUT_MS)

    assert execution.error is not None
    assert execution.error.code == "timeout"
    assert_answered_in_time(waited_ms, STRIKE_TIMEOUT_MS, execution)
    # Off the caller's thread the worker gets a little longer to answer, then is replaced.
    replaced_by = time.monotonic() + 10
    while runtime_executor.worker_pids_for_tests() == [single_worker] and time.monotonic() < replaced_by:
        time.sleep(0.05)
    assert runtime_executor.worker_pids_for_tests() != [single_worker]
    assert executions_of(run(COUNTER_ACTION, fresh_key())) == 1


# A sort of 12M elements holds its context's thread for a second or more, burning a core, and the
# context cannot be closed before it ends.
LONG_STRIKE = striking_action(
    "const a = new Float64Array(12e6);\n"
    "for (let i = 0; i < a.length; i++) a[i] = (i * 2654435761) % 1000003;\nreturn a;",
    "prepared.slice().sort();",
)
# Below worker.CLOSE_WAIT_SECONDS, for which a worker used to block the next request after a strike.
SHORT_TIMEOUT_MS = 200


def worker_holding(isolate_key: str) -> int:
    (pid,) = [pid for pid, keys in runtime_executor.worker_warm_keys_for_tests().items() if isolate_key in keys]
    return pid


@pytest.mark.parametrize("workers", [1, 2])
def test_a_struck_built_in_costs_another_tenant_neither_its_answer_nor_its_warm_isolate(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutdown_pool()
    monkeypatch.setenv("ACTIONS_RUNTIME_WORKERS", str(workers))
    runtime_executor.wait_for_idle_workers_for_tests()
    innocent_key, hostile_key = fresh_key("innocent"), fresh_key("hostile")
    assert executions_of(run(COUNTER_ACTION, innocent_key)) == 1
    if workers == 2:
        # Something warm on the other worker, so that the hostile key lands next to the innocent one.
        assert run(COUNTER_ACTION, fresh_key("filler")).error is None
    assert run(LONG_STRIKE, hostile_key, timeout_ms=20_000, memory_limit_mb=256).error is None
    struck_pid = worker_holding(hostile_key)
    assert worker_holding(innocent_key) == struck_pid
    pids = runtime_executor.worker_pids_for_tests()

    struck, struck_ms = timed(LONG_STRIKE, hostile_key, timeout_ms=STRIKE_TIMEOUT_MS, memory_limit_mb=256)
    innocents = [timed(COUNTER_ACTION, innocent_key, timeout_ms=SHORT_TIMEOUT_MS) for _ in range(3)]

    assert struck.error is not None and struck.error.code == "timeout", struck.error
    assert_answered_in_time(struck_ms, STRIKE_TIMEOUT_MS, struck)
    for innocent, waited_ms in innocents:
        assert_answered_in_time(waited_ms, SHORT_TIMEOUT_MS, innocent)
        # A worker was free for it each time: the only one, while its other thread is stuck, or
        # the other one.
        assert innocent.error is None, innocent.error
    if workers == 1:
        assert [executions_of(innocent) for innocent, _ in innocents] == [2, 3, 4]  # warm all along
    # No worker was replaced, and the struck one still holds the innocent key warm.
    assert runtime_executor.worker_pids_for_tests() == pids
    assert innocent_key in runtime_executor.worker_warm_keys_for_tests()[struck_pid]
    shutdown_pool()


def test_a_caller_waiting_for_a_busy_worker_is_answered_within_its_own_limit(single_worker: int) -> None:
    warm_key = fresh_key("warm")
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 1
    busy = threading.Thread(target=run, args=(execute_body("while (true) {}"),), kwargs={"timeout_ms": 1000})
    busy.start()
    time.sleep(0.05)  # the loop has the worker

    waiting, waited_ms = timed(COUNTER_ACTION, warm_key, timeout_ms=SHORT_TIMEOUT_MS)
    busy.join()

    assert waiting.error is not None and waiting.error.code == "timeout", waiting.error
    assert_answered_in_time(waited_ms, SHORT_TIMEOUT_MS, waiting)
    # It was never sent: the worker and the warm isolate are still there.
    assert runtime_executor.worker_pids_for_tests() == [single_worker]
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 2


# ---- defect 2: memory V8's heap limit does not count ends in `memory`, and the worker lives -------

# Each builds far more than the 64 MiB limit in a way V8's heap limit does not see in time: strings
# that cost little until V8 flattens them (a search does) and are then one allocation of hundreds of
# MiB, ArrayBuffer backing stores, ICU objects. Two or three flattened strings in one execution used
# to exhaust V8's heap, which aborts the whole worker (SIGTRAP) with every tenant's warm isolates.
DOUBLED = "let s = 'x';\nfor (let i = 0; i < 28; i++) s += s;\ns.indexOf('y');"
# Pieces joined with `+`: no single call builds more than the per-call string budget.
SIXTEEN_P = " + ".join(["p"] * 16)
SIXTEEN_Q = " + ".join(["q"] * 16)
MEMORY_BOMBS = {
    # Strings, kept in a module-level variable (what the heap check after an execution sees).
    "repeat": "const s = 'x'.repeat(2 ** 28); s.indexOf('y'); kept = s;",
    "pad-start": "const s = 'x'.padStart(2 ** 28); s.indexOf('y'); kept = s;",
    "concat": "const t = 'x'.repeat(2 ** 24); const s = t.concat(t, t, t); s.indexOf('y'); kept = s;",
    "join": "const s = new Array(2 ** 12).fill('x'.repeat(2 ** 16)).join(''); s.indexOf('y'); kept = s;",
    # 256 MiB from sixteen 16 MiB pieces, each within the per-call budget: the template literal
    # itself builds it, and the heap check after the execution is what stops it.
    "template-literal": f"const p = 'x'.repeat(2 ** 24);\nconst s = `{'${p}' * 16}`;\ns.indexOf('z'); kept = s;",
    # Two strings of 256 MiB joined with `+` from pieces within the per-call budget, flattened back
    # to back: the worker's headroom (--jitless) is what keeps V8 from aborting.
    "two-flattened": f"const p = 'y'.repeat(2 ** 24);\nconst t = {SIXTEEN_P};\nt.indexOf('x');\n"
    f"const q = 'x'.repeat(2 ** 24);\nconst s = {SIXTEEN_Q};\ns.indexOf('y');\nkept = [s, t];",
    "two-byte-twice": f"const p = '\\u1235'.repeat(2 ** 23);\nconst t = {SIXTEEN_P};\nt.indexOf('y');\n"
    f"const q = '\\u1234'.repeat(2 ** 23);\nconst s = {SIXTEEN_Q};\ns.indexOf('y');\nkept = [s, t];",
    # Built by calls whose result's length is only known afterwards: the first is refused after it
    # was built, and every metered call after it is refused before.
    "json-stringify": "const a = new Array(2 ** 12).fill('x'.repeat(2 ** 16));\n"
    "kept = [JSON.stringify(a), JSON.stringify(a), JSON.stringify(a)];",
    "regexp-replace": "const t = 'x'.repeat(2 ** 24); const r = /x/g;\n"
    "kept = [r[Symbol.replace](t, 'yyyyyyyyyyyyyyyy'), r[Symbol.replace](t, 'zzzzzzzzzzzzzzzz')];",
    "encode-uri": "const t = '\\u1234'.repeat(2 ** 24); kept = [encodeURIComponent(t), encodeURIComponent(t)];",
    # Built with `+` and template literals, which no budget can meter: the worker's headroom
    # (--jitless) and the heap check after the execution stop these.
    "two-doubled": "kept = [];\nfor (let n = 0; n < 2; n++) { let s = 'x' + n;\nfor (let i = 0; i < 27; i++) s += s;\n"
    "s.indexOf('y'); kept.push(s); }",
    "three-doubled": "kept = [];\nfor (let n = 0; n < 3; n++) { let s = 'x' + n;\n"
    "for (let i = 0; i < 27; i++) s = `${s}${s}`;\ns.indexOf('y'); kept.push(s); }",
    # Still open: two two-byte strings of 2 ** 28 characters (512 MiB each) flattened back to back
    # with no collection between them exhaust the worker's data limit inside one allocation, and V8
    # cannot recover from that (mini-racer registers no near-heap-limit callback; no V8 flag makes
    # it recoverable).
    "two-byte-doubled": "kept = [];\nfor (let n = 0; n < 2; n++) { let s = '\\u1234' + n;\n"
    "for (let i = 0; i < 27; i++) s += s;\ns.indexOf('y'); kept.push(s); }",
    # Arrays: the heap limit sees them, at the next collection.
    "array-fill": "kept = new Array(1.3e8).fill(0);",
    "array-from": "kept = Array.from({ length: 1e8 });",
    # ArrayBuffer memory: at most the memory limit in total per execution, whatever allocates it.
    "array-buffer-bomb": "kept = [];\n"
    "for (let i = 0; i < 64; i++) kept.push(new Uint8Array(new ArrayBuffer(2 ** 24)).fill(1));",
    "resizable-growth": "const b = new ArrayBuffer(0, { maxByteLength: 2 ** 30 }); kept = b;\n"
    "for (let i = 1; i <= 64; i++) { b.resize(i * 2 ** 24); new Uint8Array(b).fill(1); }",
    "typed-array-slice": "const a = new Uint8Array(2 ** 24); kept = [];\n"
    "for (let i = 0; i < 64; i++) kept.push(a.slice());",
    "typed-array-map": "const a = new Float64Array(2 ** 21); kept = [];\n"
    "for (let i = 0; i < 64; i++) kept.push(a.map((x) => x + 1));",
    "typed-array-from-array-like": "kept = new Float64Array({ length: 2 ** 27 });",
    "array-buffer-transfer": "let b = new ArrayBuffer(8); kept = [];\nfor (let i = 1; i <= 64; i++) { kept.push(b);"
    " b = b.transfer(i * 2 ** 24); }",
    # ICU objects live outside the V8 heap, and some constructors do not heed V8's termination.
    "date-time-format-loop": "kept = [];\nwhile (true) kept.push(new Intl.DateTimeFormat('en', { timeZone: 'UTC' }));",
    "number-format-loop": "for (let i = 0; ; i++) new Intl.NumberFormat('en', { maximumFractionDigits: i % 20 });",
    "collator-loop": "while (true) new Intl.Collator('de', { sensitivity: 'base' });",
    "segmenter-loop": "while (true) new Intl.Segmenter('en', { granularity: 'word' });",
    "date-to-locale-string-loop": "for (let i = 0; ; i++) new Date(i).toLocaleString('de', { timeZone: 'UTC' });",
    "number-to-locale-string-loop": "for (let i = 0; ; i++) i.toLocaleString('fr', { style: 'percent' });",
    "caught-and-retried": "for (;;) { try { new Intl.DateTimeFormat('en'); } catch {} }",
}
# The Intl loops are stopped by the budget of Intl objects, well inside the strike limit (the
# issue saw a DateTimeFormat loop go on for a second past a 100 ms limit, but at 100 ms a busy
# machine's scheduling alone can take 10 %).
# One that catches the refusals and goes on runs into the time limit instead.
INTL_LOOPS = {name for name in MEMORY_BOMBS if name.endswith("-loop") or name == "caught-and-retried"}


MEMORY_BOMB_CASES = [
    pytest.param(
        name,
        marks=[pytest.mark.xfail(reason="V8 aborts on an exhausted data limit (issue 13, defect 2)")]
        if name == "two-byte-doubled"
        else [],
    )
    for name in MEMORY_BOMBS
]


@pytest.mark.parametrize("name", MEMORY_BOMB_CASES)
def test_memory_the_heap_limit_does_not_see_ends_in_memory_and_the_worker_lives(name: str, single_worker: int) -> None:
    warm_key = fresh_key("warm")
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 1
    timeout_ms = STRIKE_TIMEOUT_MS if name in INTL_LOOPS else 2000
    body = MEMORY_BOMBS[name]
    bomb = PRELUDE + f"let kept;\nasync function execute(input) {{\n{body}\nreturn {{ kind: 'continue' }};\n}}\n"

    execution, waited_ms = timed(bomb, timeout_ms=timeout_ms)

    assert execution.error is not None, "hundreds of MiB passed a 64 MiB limit"
    assert execution.error.code in ("memory", "timeout"), execution.error
    if name in INTL_LOOPS and name != "caught-and-retried":
        assert execution.error.code == "memory", execution.error  # the Intl budget, not the clock
    assert_answered_in_time(waited_ms, timeout_ms, execution)
    # The worker lived through it, and another tenant's isolate on it is still warm.
    assert runtime_executor.worker_pids_for_tests() == [single_worker]
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 2


def test_a_huge_array_fill_does_not_get_the_worker_replaced_afterwards(single_worker: int) -> None:
    # Array.prototype.fill over a sparse array of 1.3e8 elements does not heed V8's termination: it
    # held the context's thread past the limit until the worker asked to be replaced (after
    # worker.CLOSE_STUCK_SECONDS) and every warm isolate on it went.
    warm_key = fresh_key("warm")
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 1

    execution = run(execute_body("new Array(1.3e8).fill(0);"), timeout_ms=STRIKE_TIMEOUT_MS)
    time.sleep(CLOSE_STUCK_SECONDS + 0.5)

    assert execution.error is not None
    assert execution.error.code == "memory", execution.error
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 2
    assert runtime_executor.worker_pids_for_tests() == [single_worker]


def test_a_flattened_string_dropped_within_the_execution_costs_the_worker_nothing(single_worker: int) -> None:
    # Built with `+`, flattened and dropped before the end: nothing is left for the heap check to
    # see, so the execution may succeed; the worker and its warm isolates must live.
    warm_key = fresh_key("warm")
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 1
    source = execute_body("for (let n = 0; n < 3; n++) { " + DOUBLED + " }\nreturn { kind: 'continue' };")

    execution, waited_ms = timed(source, timeout_ms=2000)

    assert execution.error is None or execution.error.code in ("memory", "timeout"), execution.error
    assert_answered_in_time(waited_ms, 2000, execution)
    assert runtime_executor.worker_pids_for_tests() == [single_worker]
    assert executions_of(run(COUNTER_ACTION, warm_key)) == 2


def test_a_string_within_the_limit_still_works() -> None:
    source = execute_body("const s = 'x'.repeat(2 ** 23); return { kind: 'continue', state: { at: s.indexOf('y') } };")

    assert state_of(run(source, timeout_ms=5000)) == {"at": -1}


def test_metered_built_ins_still_behave_as_built_ins() -> None:
    probe = execute_body("""
    class Bytes extends Uint8Array { sum() { return this.reduce((a, b) => a + b, 0); } }
    const bytes = Bytes.from([1, 2, 3]);
    const species = bytes.map((x) => x * 2);
    const grown = new ArrayBuffer(4, { maxByteLength: 16 });
    grown.resize(12);
    const checks = {
        instanceOf: new Uint8Array(2) instanceof Uint8Array && new ArrayBuffer(1) instanceof ArrayBuffer,
        names: [Uint8Array.name, ArrayBuffer.name, Intl.DateTimeFormat.name, "".repeat.name, [].join.name],
        lengths: [Uint8Array.length, ArrayBuffer.length, "".padStart.length, [].join.length, "".concat.length],
        subclass: [bytes.constructor.name, bytes.sum(), species instanceof Bytes, species.sum()],
        constructors: [new Uint8Array(1).constructor === Uint8Array, Object.getPrototypeOf(Int8Array) ===
            Object.getPrototypeOf(Uint8Array), Uint8Array.BYTES_PER_ELEMENT, ArrayBuffer.isView(bytes)],
        copies: [Array.from(new Uint16Array(new Set([5, 6]))), new Float64Array(bytes).length,
            Array.from(new Int8Array({ length: 2, 0: 7, 1: 8 })), new ArrayBuffer(8).slice(-3).byteLength,
            grown.byteLength, grown.transferToFixedLength(20).byteLength, Array.from(bytes.toReversed())],
        strings: ["ab".repeat(3), "7".padStart(3, "0"), "a".concat(1, null), [1, [2, [3]], null].join("-"),
            "é".normalize("NFD").length, "x".padEnd(2, "")],
        intl: [new Intl.NumberFormat("en").format(1234.5), Intl.DateTimeFormat("en", { timeZone: "UTC" })
            .format(0), (1234).toLocaleString("de"), "a".localeCompare("b"), new Intl.Collator() instanceof
            Intl.Collator],
        frozen: [Object.isFrozen(Uint8Array), Object.isFrozen(ArrayBuffer.prototype.slice)],
        arrays: [Array.from({ length: 2, 0: "a", 1: null }), new Array(2).fill(7), [1, 2, 3].fill(0, 1),
            Array.from("ab"), [3, 1, 2].toSorted(), Array.from.length, [].fill.length],
    };
    const cyclic = [1]; cyclic.push(cyclic);
    checks.cyclic = cyclic.join();
    return { kind: "continue", state: checks };
    """)

    assert state_of(run(probe)) == {
        "instanceOf": True,
        "names": ["Uint8Array", "ArrayBuffer", "DateTimeFormat", "repeat", "join"],
        "lengths": [3, 1, 1, 1, 1],
        "subclass": ["Bytes", 6, True, 12],
        "constructors": [True, True, 1, True],
        "copies": [[5, 6], 3, [7, 8], 3, 12, 20, [3, 2, 1]],
        "strings": ["ababab", "007", "a1null", "1-2,3-", 2, "x"],
        "intl": ["1,234.5", "1/1/1970", "1.234", -1, True],
        "frozen": [True, True],
        "arrays": [["a", None], [7, 7], [1, 0, 0], ["a", "b"], [1, 2, 3], 1, 1],
        "cyclic": "1,",
    }


def test_a_refused_allocation_cannot_be_caught_and_passed_off_as_a_result() -> None:
    source = execute_body("try { new ArrayBuffer(2 ** 30); } catch {}\nreturn { kind: 'continue' };")

    execution = run(source)

    assert execution.error is not None
    assert execution.error.code == "memory"
    assert execution.error.message == "Execution exceeded its 64 MiB memory limit (ArrayBuffer memory)."


def test_budgets_start_afresh_for_each_execution() -> None:
    source = execute_body(
        "const kept = []; for (let i = 0; i < 3; i++) kept.push(new ArrayBuffer(2 ** 24));\n"
        "for (let i = 0; i < 600; i++) new Intl.NumberFormat('en');\nreturn { kind: 'continue' };"
    )
    key = fresh_key("budgets")

    assert [run(source, key).error for _ in range(3)] == [None, None, None]
