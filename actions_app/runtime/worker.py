"""The sandbox worker process, started by pool.py (`python -c "...worker import main; main()"`).

It reads execute requests from stdin and answers on stdout, one at a time, in the frames of
protocol.py. Before V8 starts it limits its own data segment (RLIMIT_DATA), which is what stops
ArrayBuffer bombs: V8's per-isolate memory limit counts the JS heap only, not ArrayBuffer backing
stores. RLIMIT_AS is not usable because V8 reserves far more address space than it ever touches.

Measured with mini-racer 0.14.1 (V8 14.4): with the JIT, the first context took the data segment
from ~30 MB to ~555 MB (V8's code range, reserved writable); with --jitless it starts at ~37 MB
(~84 MB with ten warm isolates), and every further context adds ~1.6 MB plus its thread's stack
(8 MiB by default, 2 MiB here). So the warm cache is bounded by count and, as a second line, by the
data segment: when it passes DATA_SOFT_LIMIT_BYTES the coldest isolates go.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import queue
import resource
import select
import signal
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

from py_mini_racer import init_mini_racer

from actions_app.runtime.isolate import Outcome, WarmIsolate
from actions_app.runtime.protocol import ChannelClosed, read_frame, write_frame

DATA_LIMIT_BYTES = 1024 * 1024 * 1024
DATA_SOFT_LIMIT_BYTES = 800 * 1024 * 1024
# Passed on by the pool; lowers (or raises, up to the hard limit) where eviction starts.
SOFT_LIMIT_ENV = "ACTIONS_RUNTIME_SOFT_LIMIT_MB"
THREAD_STACK_BYTES = 2 * 1024 * 1024
WARM_ISOLATES_PER_WORKER = 32
# Flags for the whole V8 instance: eval(), new Function() and friends throw EvalError. --jitless
# (interpreter only) gives back the ~520 MB the JIT's code range took of the data limit: V8 aborts
# the whole worker when its heap is exhausted (mini-racer registers no near-heap-limit callback, and
# no flag makes that recoverable), and strings built with `+` or template literals, which no budget
# meters, can take hundreds of MiB in one flattening before the heap limit is checked. With the room,
# two or three such strings end in `memory` and the worker lives. Measured cost: none on a warm
# sign-in (0.15 ms in the isolate either way); ~40 % on pure computation (a 1,000-character hash loop
# 85 -> 123 us).
V8_FLAGS = ("--single-threaded", "--disallow-code-generation-from-strings", "--jitless")
# The exit status a worker uses when the test hook asks it to die mid-request.
TEST_CRASH_EXIT_STATUS = 70
# A stopped context is closed after the reply, on a thread of its own: closing waits for V8 to give
# the context's thread back, and a built-in V8 cannot interrupt can hold it for a second or more.
# The reply says a context is still closing, and the worker reports when it is done (a status
# frame); meanwhile the pool hands this worker out last, and the worker serves a request that comes
# at once: its warm isolates run on threads of their own. Only a request that needs a new context
# waits, within its own time limit and for at most this long, for the closing one's memory (up to
# the data limit after an ArrayBuffer bomb) to be back; a context that stopped cleanly closes in a
# few milliseconds.
CLOSE_WAIT_SECONDS = 0.25
# How often the worker, between requests, looks whether a stopped context has closed.
CLOSE_POLL_SECONDS = 0.005
# A context still not closed after this long is stuck for good: the worker asks to be replaced.
CLOSE_STUCK_SECONDS = 3.0


# The open /proc/self/status and the process that opened it: after a fork the child would read
# its parent's file, so a changed pid opens it again.
_status_file: tuple[int, int] | None = None


def data_segment_bytes() -> int:
    """The process's VmData (what RLIMIT_DATA limits), or 0 where /proc is unavailable.

    Asked after every execution, so the file stays open and is re-read from its start (the
    kernel regenerates it on each read): one system call instead of open, read and close."""
    global _status_file
    try:
        if _status_file is None or _status_file[0] != os.getpid():
            _status_file = (os.getpid(), os.open("/proc/self/status", os.O_RDONLY))
        status = os.pread(_status_file[1], 8192, 0)
    except OSError:
        return 0
    start = status.find(b"VmData:")
    if start < 0:
        return 0
    return int(status[start + 7 : status.index(b"kB", start)]) * 1024


def _set_default_thread_stack(size: int) -> None:
    # mini-racer runs each isolate on its own std::thread, which gets glibc's default stack size
    # (RLIMIT_STACK, usually 8 MiB) and counts against RLIMIT_DATA. V8 itself uses < 1 MiB of it.
    try:
        libc = ctypes.CDLL(None)
        attributes = ctypes.create_string_buffer(128)  # larger than glibc's pthread_attr_t
        if libc.pthread_attr_init(attributes) == 0:
            libc.pthread_attr_setstacksize(attributes, ctypes.c_size_t(size))
            libc.pthread_setattr_default_np(attributes)
            libc.pthread_attr_destroy(attributes)
    except (OSError, AttributeError):
        pass  # not glibc: the eviction by data size still bounds the cache


def limit_process() -> None:
    """Resource limits that must be in place before V8 allocates anything."""
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT_BYTES, DATA_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing worker leaves no core file behind
    _set_default_thread_stack(THREAD_STACK_BYTES)


class ContextCloser:
    """Closes stopped contexts off the main thread, one after another, on a thread started with
    the worker: after an ArrayBuffer bomb the data segment is full and no new thread could start."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[WarmIsolate, threading.Event]] = queue.SimpleQueue()
        # What the main thread handed over and is not closed yet, with when it was handed over.
        self._pending: list[tuple[threading.Event, float]] = []
        threading.Thread(target=self._close_forever, name="close-stopped-isolates", daemon=True).start()

    def _close_forever(self) -> None:
        while True:
            isolate, closed = self._queue.get()
            try:
                isolate.close()
            finally:
                closed.set()

    def close_later(self, isolate: WarmIsolate) -> None:
        closed = threading.Event()
        self._pending.append((closed, time.monotonic()))
        self._queue.put((isolate, closed))

    def wait(self, seconds: float) -> None:
        """Wait up to `seconds` for everything handed over to be closed."""
        wait_until = time.monotonic() + seconds
        for closed, _ in self._pending:
            closed.wait(timeout=max(0.0, wait_until - time.monotonic()))

    def wait_unless_readable(self, fd: int) -> bool:
        """Wait until everything handed over is closed, or stuck (CLOSE_STUCK_SECONDS), or `fd`
        (the next request) is readable; True if everything was closed."""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while pending := self.pending_since():
            if time.monotonic() - min(pending) > CLOSE_STUCK_SECONDS or poller.poll(0):
                return False
            self._pending[0][0].wait(timeout=CLOSE_POLL_SECONDS)
        return True

    def pending_since(self) -> list[float]:
        """When each context still being closed was handed over."""
        self._pending = [(closed, since) for closed, since in self._pending if not closed.is_set()]
        return [since for _, since in self._pending]


class IsolateCache:
    """Warm isolates of this worker, least recently used first, never shared between keys.

    It also keeps one spare: a context with the sandbox set up but no action code, built between
    requests, so a cold execution pays for loading its module only (setting up a context and
    freezing its built-ins takes several milliseconds).
    """

    def __init__(
        self,
        event_loop: asyncio.AbstractEventLoop,
        capacity: int = WARM_ISOLATES_PER_WORKER,
        soft_limit_bytes: int = DATA_SOFT_LIMIT_BYTES,
    ) -> None:
        self._event_loop = event_loop
        self._capacity = capacity
        self._soft_limit_bytes = soft_limit_bytes
        self._isolates: OrderedDict[str, WarmIsolate] = OrderedDict()
        self._spare: WarmIsolate | None = None
        self._unreported_evictions: list[str] = []
        self._closer = ContextCloser()
        # What this worker held once V8 was up (see record_starting_size and tidy).
        self._starting_data_bytes = 0
        self.retiring = False
        # tidy() left memory out while a context was closing: the first reply after it closed
        # tidies first, so that a worker left over its soft limit still asks to be replaced.
        self._tidy_owed = False

    def record_starting_size(self) -> None:
        """Call once the first context exists: V8's process-wide reservations come with it."""
        self._starting_data_bytes = data_segment_bytes()

    @property
    def needs_spare(self) -> bool:
        # Not while a stopped context is still closing: it may hold the memory a new one needs.
        return self._spare is None and not self._closer.pending_since()

    async def prepare_spare(self) -> None:
        if self._spare is None:
            self._spare = await WarmIsolate.create(self._event_loop)

    @property
    def closing(self) -> bool:
        """True while a stopped context is still being closed."""
        return bool(self._closer.pending_since())

    def wait_for_closing(self, request_fd: int) -> bool:
        """After a reply: wait for stopped contexts to close until a request comes (its warm
        isolate need not wait) or one is stuck. True if they all closed."""
        closed = self._closer.wait_unless_readable(request_fd)
        self._check_closing()
        return closed

    def status(self) -> dict[str, Any]:
        """What the pool is told between requests once a stopped context has closed (or is stuck)."""
        return {"status": "idle", "closing": self.closing, "retire": self.retiring}

    async def _checkout(self, isolate_key: str, compiled_js: str, deadline: float) -> WarmIsolate:
        isolate = self._isolates.pop(isolate_key, None)
        if isolate is not None and isolate.compiled_js != compiled_js:
            # A key names one version's code; different code under the same key is the caller's
            # mistake, and must not run in a context the other code has touched.
            isolate.close()
            isolate = None
        if isolate is None:
            isolate, self._spare = self._spare, None
            if isolate is None:
                # A context still closing may hold the memory a new one needs; wait a little for
                # it, within this request's own time limit.
                self._closer.wait(min(CLOSE_WAIT_SECONDS, max(0.0, deadline - time.monotonic())))
                isolate = await WarmIsolate.create(self._event_loop)
            isolate.adopt(isolate_key, compiled_js)
        return isolate

    def _check_closing(self) -> bool:
        """True while stopped contexts are still closing. One closing for longer than
        CLOSE_STUCK_SECONDS makes this worker ask to be replaced."""
        pending_since = self._closer.pending_since()
        if any(time.monotonic() - since > CLOSE_STUCK_SECONDS for since in pending_since):
            self.retiring = True
        return bool(pending_since)

    def tidy(self) -> None:
        """Between requests: evict the coldest isolates beyond the count, or while memory is tight."""
        # A context still closing holds memory it is about to give back; evicting warm isolates
        # for it would throw away other tenants' isolates for nothing.
        memory_counts = not self._check_closing()
        self._tidy_owed = not memory_counts

        def too_many() -> bool:
            if len(self._isolates) > self._capacity:
                return True
            return memory_counts and data_segment_bytes() > self._soft_limit_bytes

        while self._isolates and too_many():
            isolate_key, isolate = self._isolates.popitem(last=False)
            isolate.close()
            self._unreported_evictions.append(isolate_key)
        # Everything evicted and still over the limit: after a memory-hungry action the allocator
        # and V8 keep address space they will not hand back, and from here on every warm isolate
        # would be evicted as soon as it was used. A fresh process starts well below the limit, so
        # the next reply asks the pool for one (unless this process started over it already).
        started_below = 0 < self._starting_data_bytes < self._soft_limit_bytes
        if memory_counts and not self._isolates and started_below and data_segment_bytes() > self._soft_limit_bytes:
            self.retiring = True

    async def execute(self, request: dict[str, Any], received_at: float) -> dict[str, Any]:
        """Run one execute request; its time limit counts from `received_at`."""
        isolate_key = str(request["isolate_key"])
        deadline = received_at + int(request["timeout_ms"]) / 1000
        isolate = await self._checkout(isolate_key, str(request["compiled_js"]), deadline)
        outcome: Outcome = await isolate.execute(
            request["action_input"],
            timeout_ms=int(request["timeout_ms"]),
            memory_limit_mb=int(request["memory_limit_mb"]),
            started=received_at,
        )
        if not outcome.context_healthy:
            # Closing terminates whatever the action left running (V8's TerminateExecution), but
            # waits for a built-in that does not heed it: answer first, close on the side.
            self._closer.close_later(isolate)
        closing = self._check_closing()
        if self._tidy_owed and not closing:
            # Before this isolate joins the cache: the pool learns it is warm from this reply.
            self.tidy()
        if outcome.context_healthy:
            self._isolates[isolate_key] = isolate
        # Evictions happen after the reply (tidy), so they are reported with the next one.
        evicted, self._unreported_evictions = self._unreported_evictions, []
        return {
            "result_json": outcome.result_json,
            "error": None
            if outcome.error_code is None
            else {"code": outcome.error_code, "message": outcome.error_message},
            "logs": outcome.logs,
            "duration_ms": outcome.duration_ms,
            "warm": outcome.context_healthy,
            "evicted": evicted,
            "retire": self.retiring,
            "closing": closing,
        }


def _apply_test_fault(fault: object) -> None:
    # Test hooks, reachable only from the web process through the pipe: they stand in for a
    # worker that crashes (segfault, OOM kill) or hangs in native code during an execution.
    if fault == "exit":
        os._exit(TEST_CRASH_EXIT_STATUS)
    if fault == "hang":
        time.sleep(3600)


def serve(request_fd: int, reply_fd: int) -> None:
    # The loop runs on this thread only while an execution is in progress; between requests the
    # worker blocks in read_frame and no JavaScript runs.
    event_loop = asyncio.new_event_loop()
    asyncio.set_event_loop(event_loop)
    configured = os.environ.get(SOFT_LIMIT_ENV, "")
    soft_limit = int(configured) * 1024 * 1024 if configured.isdecimal() else DATA_SOFT_LIMIT_BYTES
    cache = IsolateCache(event_loop, soft_limit_bytes=min(soft_limit, DATA_LIMIT_BYTES))
    # The first spare also pays V8's start-up, and fails here, visibly, if the sandbox cannot be
    # set up at all.
    event_loop.run_until_complete(cache.prepare_spare())
    cache.record_starting_size()
    write_frame(reply_fd, {"ready": True, "pid": os.getpid()})
    while True:
        try:
            request = read_frame(request_fd)
        except ChannelClosed:
            return  # the web process closed our stdin: it is done with us
        received_at = time.monotonic()
        if "queued_ms" in request:
            # The caller's time limit started when it asked the pool, and it waited for this
            # worker that long: the execution gets what is left of it.
            received_at -= float(request["queued_ms"]) / 1000
            request = read_frame(request_fd)
        _apply_test_fault(request.get("test_fault"))
        reply = event_loop.run_until_complete(cache.execute(request, received_at))
        write_frame(reply_fd, reply)
        # Housekeeping while the web process reads the reply, not while it waits for one.
        closed = reply["closing"] and cache.wait_for_closing(request_fd)
        cache.tidy()
        if reply["closing"] and (closed or cache.retiring):
            # The pool hands this worker out last until it hears this.
            write_frame(reply_fd, cache.status())
        if cache.needs_spare:  # a turn of the event loop costs more than the rest of the tidying
            event_loop.run_until_complete(cache.prepare_spare())


def main() -> None:
    # Ctrl-C in a dev server's terminal reaches the whole process group; the web process decides
    # when workers stop (by closing their stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Replies go to a private copy of stdout; fd 1 is pointed at stderr so a stray print (or V8
    # writing a fatal error) cannot corrupt the frames.
    reply_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    limit_process()
    init_mini_racer(flags=V8_FLAGS)
    # The web process may go away (or shut the pool down) mid-conversation: nothing to report to.
    with contextlib.suppress(BrokenPipeError, ChannelClosed):
        serve(sys.stdin.fileno(), reply_fd)
    # Without finalisers: a stopped context may still be closing on another thread, and tearing
    # V8 down under it would only crash on the way out. Everything was written with os.write.
    os._exit(0)


if __name__ == "__main__":
    main()
