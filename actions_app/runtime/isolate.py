"""Inside a worker: V8 isolates for action versions, kept warm per isolate key.

Each isolate key gets its own mini-racer context, and mini-racer gives every context its own V8
isolate (its own heap, its own thread), so nothing is shared between keys. A context is set up
once (capturing console, allow-listed globals, frozen built-ins: isolate_runtime.js and
isolate_lockdown.js), the action module is evaluated once, and later executions of the same key
only call execute() again.

Time limits. mini-racer runs promise reactions (microtasks) on its own thread *after* an eval has
returned, outside that eval's timeout, so awaiting a JS promise from Python can hang for ever on
an action that loops after an `await`. Instead each execution is one eval that starts execute()
and stores its outcome from a promise reaction, followed by evals that poll for that outcome,
each bounded by the time left. Whatever the action is still doing when the time is up is ended by
closing the context: mini-racer's context teardown calls V8's TerminateExecution, which stops a
loop in a microtask too. A context that timed out or hit its memory limit is never reused.

mini-racer runs the microtask checkpoint after each eval, before the next one, so a poll only
ever sees an outcome once everything the execution queued has run: nothing queued by one
execution can run during the next. Built-ins that V8 cannot interrupt (a typed-array sort,
JSON.parse of a huge text, some Intl constructors) may hold the context's thread past the limit;
the worker answers at the limit all the same and closes such a context afterwards (worker.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from py_mini_racer import JSEvalException, JSOOMException, JSParseException, MiniRacer
from py_mini_racer._mini_racer import _make_context

from actions_app.runtime.protocol import clip_error_message, storable

# Evaluated in this order in every new context, as one script, before any action code.
SANDBOX_SOURCE = "\n".join(
    Path(__file__).with_name(name).read_text(encoding="utf-8") for name in ("isolate_runtime.js", "isolate_lockdown.js")
)
ACTION_SOURCE_URL = "action.js"  # the file name stack traces and syntax errors show operators
LOG_LIMIT_BYTES = 8 * 1024
LOGS_TRUNCATED = {"level": "warn", "message": "… logs truncated"}
# How long to spend reading the logs of an execution that was stopped; a context still busy in a
# microtask loop or a built-in never answers, and the logs are not worth more than this, nor more
# than this share of the time limit: the answer is due soon after the limit (pool.ANSWER_SLACK).
LOG_SALVAGE_SECONDS = 0.02
LOG_SALVAGE_SHARE = 0.02
# Setting up a context (removing globals, freezing built-ins) takes a few milliseconds.
SANDBOX_SETUP_SECONDS = 5.0
# mini-racer checks the memory limit after each garbage collection only, and a string that V8
# flattens (a search over 'x'.repeat(2 ** 28)) is one allocation of hundreds of MiB with no
# collection after it. So an execution that took longer than this (holding even the smallest
# limit, 8 MiB, takes more) has its heap measured before its outcome counts; a warm sign-in takes
# a fraction of it and pays nothing.
HEAP_CHECK_AFTER_SECONDS = 0.001


class BareMiniRacer(MiniRacer):
    """A MiniRacer without the setTimeout shim that MiniRacer() evaluates in every new context.

    The shim declares setTimeout/clearTimeout with `var` (non-deletable globals) and builds them on
    SharedArrayBuffer and Atomics, which the sandbox removes. Skipping it needs mini-racer's
    private _make_context (checked against mini-racer 0.14.1). Every context of a worker uses the
    worker's own asyncio loop, which runs on its main thread: awaiting evals there costs one
    thread hand-off per eval instead of two, and a worker holds no loop thread per context.
    """

    def __init__(self, event_loop: asyncio.AbstractEventLoop) -> None:
        self._own_context_maker = _make_context(event_loop)
        self._ctx = self._own_context_maker.__enter__()

    async def eval_within(self, code: str, seconds: float) -> object:
        """Evaluate `code`, cancelled (V8 TerminateExecution) after `seconds`; raises TimeoutError."""
        async with asyncio.timeout(max(seconds, 0.001)):
            return await self.eval_cancelable(code)


@dataclass
class Outcome:
    """What one execution produced, as the worker reports it to the web process."""

    result_json: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    duration_ms: float = 0.0
    context_healthy: bool = True

    def fail(self, code: str, message: str, *, context_healthy: bool = True) -> Outcome:
        self.error_code = code
        # V8's own messages may quote the action's text, of any length and with lone surrogates.
        self.error_message = clip_error_message(storable(message))
        self.context_healthy = self.context_healthy and context_healthy
        return self


def finalize_logs(entries: list[dict[str, str]], truncated: bool) -> list[dict[str, str]]:
    """Keep the first LOG_LIMIT_BYTES of UTF-8 log text (one byte per entry for its newline)."""
    kept: list[dict[str, str]] = []
    used = 0
    for entry in entries:
        message = entry["message"].encode("utf-8")
        if used + len(message) + 1 > LOG_LIMIT_BYTES:
            room = LOG_LIMIT_BYTES - used - 1
            if room > 0:
                kept.append({"level": entry["level"], "message": message[:room].decode("utf-8", "ignore")})
            truncated = True
            break
        kept.append(entry)
        used += len(message) + 1
    if truncated:
        kept.append(dict(LOGS_TRUNCATED))
    return kept


def _syntax_error_message(error: JSParseException) -> str:
    # mini-racer reports "action.js:3: SyntaxError: Unexpected token ';'" then the source line.
    first_line = str(error).splitlines()[0] if str(error) else "SyntaxError"
    location, _, description = first_line.partition(": ")
    line = location.rpartition(":")[2]
    if description and line.isdigit():
        return f"{description} (line {line})"
    return first_line


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class WarmIsolate:
    """One V8 context with the sandbox runtime; once adopted by an isolate key, also its action."""

    def __init__(self, event_loop: asyncio.AbstractEventLoop) -> None:
        self.isolate_key: str | None = None
        self.compiled_js: str | None = None
        self.module_loaded = False
        self._racer = BareMiniRacer(event_loop)
        self._binding = f"__actions_runtime_{secrets.token_hex(8)}"
        self._salvage_seconds = LOG_SALVAGE_SECONDS

    @classmethod
    async def create(cls, event_loop: asyncio.AbstractEventLoop) -> WarmIsolate:
        """A fresh context with the sandbox set up and no action code in it yet."""
        isolate = cls(event_loop)
        try:
            sandbox = SANDBOX_SOURCE.replace("RUNTIME_BINDING", isolate._binding)
            await isolate._racer.eval_within(sandbox + "\n//# sourceURL=actions-runtime.js", SANDBOX_SETUP_SECONDS)
        except BaseException:
            isolate.close()
            raise
        return isolate

    def adopt(self, isolate_key: str, compiled_js: str) -> None:
        """Dedicate this (fresh) context to one isolate key; its module loads on the first execution."""
        if self.isolate_key is not None:
            raise RuntimeError("an isolate serves one isolate key for its whole life")
        self.isolate_key = isolate_key
        self.compiled_js = compiled_js

    def close(self) -> None:
        self._racer.close()

    def _module_call(self) -> str:
        # The module starts on the first line of the script, so its line numbers stay the operator's.
        return f'{self._binding}.load(function (exports, module) {{"use strict";{self.compiled_js}\n}})'

    async def execute(
        self, action_input: dict[str, Any], *, timeout_ms: int, memory_limit_mb: int, started: float | None = None
    ) -> Outcome:
        """Run execute(action_input) with the given limits and return what happened. The time
        limit runs from `started` (a time.monotonic() value; by default now), so the worker can
        count setting up a context as part of the execution."""
        outcome = Outcome()
        input_literal = json.dumps(json.dumps(action_input))
        start_call = f"{self._binding}.reset({memory_limit_mb * 1024 * 1024}); "
        if self.module_loaded:
            start_call += f'{self._binding}.begin({input_literal}); ""'
        else:
            start_call += f"{self._module_call()} || ({self._binding}.begin({input_literal}), '')"
            start_call += f"\n//# sourceURL={ACTION_SOURCE_URL}"
        timeout_message = f"Execution exceeded its {timeout_ms} ms time limit."
        memory_message = f"Execution exceeded its {memory_limit_mb} MiB memory limit."

        self._racer.set_hard_memory_limit(memory_limit_mb * 1024 * 1024)
        started = time.monotonic() if started is None else started
        deadline = started + timeout_ms / 1000
        self._salvage_seconds = min(LOG_SALVAGE_SECONDS, LOG_SALVAGE_SHARE * timeout_ms / 1000)
        try:
            load_error = await self._racer.eval_within(start_call, deadline - time.monotonic())
            if load_error:
                self._apply_reply(outcome, str(load_error))
                outcome.context_healthy = False  # a module that failed to load is not worth keeping
                return outcome
            self.module_loaded = True
            reply = await self._poll(deadline)
            if reply and not self._racer.was_hard_memory_limit_reached():
                self._apply_reply(outcome, reply)
                slow = time.monotonic() - started > HEAP_CHECK_AFTER_SECONDS
                # An execution an allocation budget refused already ended in `memory`, and its
                # context is thrown away: a full collection of its heap would only delay the answer.
                if outcome.context_healthy and slow and self._heap_over(memory_limit_mb * 1024 * 1024):
                    outcome.result_json = None
                    outcome.fail("memory", memory_message, context_healthy=False)
            elif self._racer.was_hard_memory_limit_reached():
                # Even with an outcome: V8 was told to terminate, which may have cut the microtask
                # checkpoint short and left reactions queued for the next execution.
                await self._stopped(outcome, "memory", memory_message)
            else:
                await self._stopped(outcome, "timeout", timeout_message)
        except JSParseException as error:
            outcome.fail("compile", _syntax_error_message(error), context_healthy=False)
        except (JSOOMException, TimeoutError) as error:
            if isinstance(error, JSOOMException) or self._racer.was_hard_memory_limit_reached():
                await self._stopped(outcome, "memory", memory_message)
            else:
                await self._stopped(outcome, "timeout", timeout_message)
        except JSEvalException as error:
            # Everything the action throws is caught inside the isolate; this is V8 refusing to go on
            # (for instance execution terminated), so the context is not trusted again.
            outcome.fail("exception", _first_line(error), context_healthy=False)
        finally:
            outcome.duration_ms = (time.monotonic() - started) * 1000
        return outcome

    def _heap_over(self, limit_bytes: int) -> bool:
        """Whether the context holds more than `limit_bytes` of heap, garbage left out."""
        if int(self._racer.heap_stats()["used_heap_size"]) <= limit_bytes:
            return False
        # A full collection first: what the execution dropped is not held against it. The hard
        # limit's own check runs after it (and, over the limit, leaves V8 told to terminate:
        # such a context is not used again).
        self._racer.low_memory_notification()
        return self._racer.was_hard_memory_limit_reached()

    async def _poll(self, deadline: float) -> str:
        """Poll for the outcome until it is there, the memory limit was hit or the time is up."""
        poll_call = f"{self._binding}.poll()"
        pause = 0.0005
        while True:
            reply = await self._racer.eval_within(poll_call, deadline - time.monotonic())
            if reply or self._racer.was_hard_memory_limit_reached():
                return str(reply or "")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ""
            # Nothing in the sandbox can wake a pending promise (no timers, no I/O), so this wait
            # almost always runs to the deadline; poll slowly rather than spin.
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.01)

    def _apply_reply(self, outcome: Outcome, reply: str) -> None:
        message = storable(json.loads(reply))
        outcome.logs = finalize_logs(message.get("logs", []), bool(message.get("logsTruncated")))
        if "resultJson" in message:
            outcome.result_json = message["resultJson"]
        else:
            code = message["code"]
            outcome.fail(code, message["message"], context_healthy=code != "memory")

    async def _stopped(self, outcome: Outcome, code: str, message: str) -> None:
        """Record a stopped execution, with whatever it logged if the context still answers."""
        outcome.fail(code, message, context_healthy=False)
        try:
            reply = await self._racer.eval_within(f"{self._binding}.logSnapshot()", self._salvage_seconds)
            salvaged = storable(json.loads(str(reply)))
        except (JSEvalException, TimeoutError, ValueError):
            return
        outcome.logs = finalize_logs(salvaged.get("logs", []), bool(salvaged.get("logsTruncated")))
