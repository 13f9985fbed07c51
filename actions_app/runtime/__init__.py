"""The sandbox runtime for custom actions: compiled TypeScript run in V8 isolates in worker processes.

How an execution runs
    execute_action() sends the compiled CommonJS module, the input and the limits to one of a few
    worker processes (pool.py). The worker evaluates the module inside a function that supplies
    `exports` and `module` (there is no `require` and no module loader), calls `execute(input)`,
    and reads the resolved value back as JSON. The web process validates it as an ActionResult
    for the input's trigger slot (results.py).

What persists between executions
    Each worker keeps up to 32 warm isolates, one per isolate key (one action version of one
    tenant), least recently used first. A warm isolate has the module already evaluated, so that
    version's module-level variables (a counter, a memoised table) may persist from one
    execution to the next, on the same worker only and never reliably: the isolate may be evicted,
    the next execution may go to another worker, and a worker may be replaced at any time. They are
    a cache, never a store. Nothing is shared between isolate keys: every key has its own V8
    isolate with its own heap.

What does not persist
    The input is a fresh JSON copy per execution; the result and the logs are per execution.
    Every built-in object (Object.prototype, Array.prototype, Function.prototype, the
    constructors, JSON, Math, Intl, the iterator and async-function prototypes...) and the global
    object itself are frozen before the module runs, so no execution can change the environment
    of the next one: action code always runs in strict mode, where such writes throw a TypeError.
    (Assigning e.g. `this.name` in an Error subclass still works: it creates an own property.)
    The legacy RegExp statics (RegExp.$1, lastMatch, input...) and RegExp.prototype.compile are
    removed: they would carry one execution's last match into the next.
    An isolate that timed out or ran out of memory is thrown away.

The sandbox
    The global object holds ECMAScript built-ins only (see ALLOWED_GLOBALS in
    isolate_lockdown.js) plus a capturing `console`: no require, process, fetch, timers,
    WebAssembly, SharedArrayBuffer or Atomics. Code generation from strings is disabled for the
    whole V8 instance (eval and the Function constructors throw EvalError), so constructor-chain
    tricks such as `this.constructor.constructor("return process")()` throw, and there would be no
    host object for them to find anyway. Limits per execution: wall time (async code included;
    the caller has its answer by the limit plus 10 % even while V8 is stuck in a built-in it
    cannot interrupt), the V8 heap (memory_limit_mb), and the worker's RLIMIT_DATA (1 GiB), which
    also covers ArrayBuffers; results up to 64 KiB of JSON; the first 8 KiB of console output;
    error messages up to 900 characters.
"""

from actions_app.runtime.executor import execute_action, sandbox_ready, shutdown_pool
from actions_app.runtime.results import ExecutionError, ExecutionResult, validate_action_result

__all__ = [
    "ExecutionError",
    "ExecutionResult",
    "execute_action",
    "sandbox_ready",
    "shutdown_pool",
    "validate_action_result",
]
