"""The web process's side of the runtime: a pool of sandbox worker processes.

Workers are started with subprocess (fork+exec of a fresh interpreter running worker.py), not
multiprocessing. fork+exec happens in C with no Python code between the two, so it is safe from a
threaded web server; a plain fork of a threaded process can deadlock on locks that another thread
held, and a fork would also hand V8 state to the child. The pipes give a clean signal when a
worker dies (EOF), need no pickling, and `kill` ends exactly one process.

Each worker runs one execution at a time. The pool keeps the idle workers behind a condition
variable, so any number of web threads can call in; a call prefers an idle worker that already
has its isolate key warm and otherwise takes the idle worker with the fewest warm keys. A worker
still closing a stopped context (a built-in V8 cannot interrupt may hold it for a second or more,
burning a core) is handed out last, and never for a warm key another worker could serve cold,
until it reports that the context is closed. A worker that dies mid-execution fails that
execution only (worker_crashed) and is replaced at once.

The caller has its answer by the time limit plus 10 %, whatever the action does. The limit counts
from the call into the pool: waiting for a free worker, or for one to start, is part of it, and
the worker is told how long the request waited. The worker stops an execution at its limit and
answers, and if no answer has come by then the pool answers the caller with a timeout itself.
Off the caller's thread it then waits a little longer (GRACE_SECONDS) for the worker's reply,
since the worker may only be slow (a busy machine), and kills and replaces it only if it stays
silent: a worker holds other tenants' warm isolates. Replacing a worker that crashed or retired
also happens off the caller's thread, and a replacement is handed out only once it is ready.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actions_app.runtime.protocol import ChannelClosed, ChannelCorrupt, ChannelTimeout, FrameChannel, encode_frame
from actions_app.runtime.worker import SOFT_LIMIT_ENV, WARM_ISOLATES_PER_WORKER

WORKERS_ENV = "ACTIONS_RUNTIME_WORKERS"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The caller is answered by the time limit plus this share of it (the contract allows 10 %; the
# rest of the 10 % is for the caller's own thread to wake up on a busy machine).
ANSWER_SLACK = 0.03
# A request that waited less than this for its worker is sent as it is; one that waited longer
# tells the worker how long, so that the execution ends when the caller's time limit does.
QUEUED_NOTICE_SECONDS = 0.001
# After a caller was answered without the worker: how much longer the worker may take to reply
# before it is taken for stuck (in native code, or its process wedged) and killed.
GRACE_SECONDS = 1.0
STARTUP_SECONDS = 30.0
STOP_SECONDS = 1.0


class WorkerCrashed(Exception):
    """The worker died (or never started) while serving a request."""


class WorkerHung(Exception):
    """The worker did not answer before the request's deadline. The pool goes on waiting for its
    reply in the background and replaces it if none comes."""


def default_worker_count() -> int:
    configured = os.environ.get(WORKERS_ENV, "").strip()
    if configured:
        try:
            count = int(configured)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV} must be a whole number, got {configured!r}") from None
        if count < 1:
            raise ValueError(f"{WORKERS_ENV} must be at least 1, got {count}")
        return count
    return min(2, os.cpu_count() or 1)


def _worker_environment() -> dict[str, str]:
    # A worker needs nothing from the web process's environment (secret keys, database URLs).
    # Action code cannot read the environment anyway; what is not there cannot leak.
    environment = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONPATH": str(PROJECT_ROOT)}
    if SOFT_LIMIT_ENV in os.environ:
        environment[SOFT_LIMIT_ENV] = os.environ[SOFT_LIMIT_ENV]
    return environment


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class WorkerProcess:
    """One sandbox worker process and what the pool knows about it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-c", "from actions_app.runtime.worker import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
            env=_worker_environment(),
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        os.set_blocking(self.process.stdin.fileno(), False)
        os.set_blocking(self.process.stdout.fileno(), False)
        self._channel = FrameChannel(self.process.stdin.fileno(), self.process.stdout.fileno())
        self.pid = self.process.pid
        self.ready = False
        self._startup_deadline = time.monotonic() + STARTUP_SECONDS
        # Set by the worker's last reply or status: a stopped context is still closing on it (it
        # is handed out last), or it asks to be replaced.
        self.closing = False
        self.retire_requested = False
        # Mirrors the worker's own LRU of warm isolates (same capacity, same order of use), from
        # what each reply says was kept and evicted.
        self.warm_keys: OrderedDict[str, None] = OrderedDict()

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def wait_until_ready(self, deadline: float | None = None) -> None:
        """Wait for the worker's start-up, until `deadline` (WorkerHung, the worker still
        starting) or STARTUP_SECONDS after it was started (WorkerCrashed, the worker killed)."""
        if self.ready:
            return
        give_up = self._startup_deadline if deadline is None else min(deadline, self._startup_deadline)
        try:
            self._channel.receive_until(give_up)
        except ChannelTimeout as error:
            if give_up < self._startup_deadline:
                raise WorkerHung from error
            self.kill()
            raise WorkerCrashed(f"The sandbox worker did not start ({_describe_exit(self.process.poll())}).") from error
        except (ChannelClosed, ChannelCorrupt) as error:
            self.kill()
            raise WorkerCrashed(f"The sandbox worker did not start ({_describe_exit(self.process.poll())}).") from error
        self.ready = True

    def note_status(self, status: dict[str, Any]) -> None:
        self.closing = bool(status.get("closing"))
        self.retire_requested = self.retire_requested or bool(status.get("retire"))

    def take_status(self) -> None:
        """Read the status frames an idle worker sent since its last reply (never waits)."""
        with contextlib.suppress(ChannelClosed, ChannelCorrupt):  # found dead at checkout
            while (status := self._channel.receive_available()) is not None:
                self.note_status(status)

    def _receive_reply(self, deadline: float) -> dict[str, Any]:
        while True:
            reply = self._channel.receive_until(deadline)
            if "status" not in reply:
                return reply
            self.note_status(reply)

    def request(self, frame: bytes, *, deadline: float) -> dict[str, Any]:
        """Send one encoded request and wait for its reply until `deadline`. On WorkerHung the
        worker is left running and the request where it was: see finish_late_request."""
        try:
            self._channel.send_until(frame, deadline)
            return self._receive_reply(deadline)
        except ChannelTimeout as error:
            raise WorkerHung from error
        except (ChannelClosed, ChannelCorrupt) as error:
            raise self._crashed() from error

    def finish_late_request(self, *, deadline: float) -> dict[str, Any]:
        """Finish the request that missed its deadline and read its reply, until `deadline`; a
        worker that does not make it is killed (WorkerHung)."""
        try:
            if self._channel.sending:
                self._channel.send_until(None, deadline)
            return self._receive_reply(deadline)
        except ChannelTimeout as error:
            self.kill()
            raise WorkerHung from error
        except (ChannelClosed, ChannelCorrupt) as error:
            raise self._crashed() from error

    def _crashed(self) -> WorkerCrashed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_SECONDS)
        how = _describe_exit(self.process.poll())
        self.kill()
        return WorkerCrashed(
            f"The sandbox worker stopped unexpectedly ({how}); this execution was abandoned and the worker replaced."
        )

    def note_reply(self, isolate_key: str, reply: dict[str, Any]) -> None:
        self.note_status(reply)
        for evicted_key in reply.get("evicted", []):
            self.warm_keys.pop(evicted_key, None)
        if reply.get("warm"):
            self.warm_keys[isolate_key] = None
            self.warm_keys.move_to_end(isolate_key)
            while len(self.warm_keys) > WARM_ISOLATES_PER_WORKER:
                self.warm_keys.popitem(last=False)
        else:
            self.warm_keys.pop(isolate_key, None)

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def send_kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def stop(self) -> None:
        """Ask the worker to exit (EOF on its stdin), then make sure it has."""
        self._close_pipes()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()

    def abandon(self) -> None:
        """Forget a worker inherited through fork(): close our copies of its pipes, leave it running."""
        self._close_pipes()


class WorkerPool:
    """A fixed number of workers, handed out one request at a time."""

    def __init__(self, size: int) -> None:
        self.owner_pid = os.getpid()
        self._condition = threading.Condition()
        self._closed = False
        self._workers: list[WorkerProcess] = [WorkerProcess() for _ in range(size)]
        # Handed out once started, like a replacement: a caller's time limit counts its wait.
        self._idle: list[WorkerProcess] = []
        for worker in self._workers:
            self._in_background(self._checkin_when_ready, worker)

    def _checkout(self, isolate_key: str, deadline: float) -> WorkerProcess:
        """An idle worker, or WorkerHung if none is free by `deadline`."""
        with self._condition:
            while True:
                if self._closed:
                    raise WorkerCrashed("The action runtime is shutting down.")
                if self._idle and self._take_statuses():
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerHung
                self._condition.wait(remaining)
            # Workers still closing a stopped context come last, whatever they hold warm.
            candidates = [worker for worker in self._idle if not worker.closing] or self._idle
            chosen = next((worker for worker in candidates if isolate_key in worker.warm_keys), None)
            if chosen is None:
                chosen = min(candidates, key=lambda worker: len(worker.warm_keys))
            self._idle.remove(chosen)
        if not chosen.is_alive():
            # Died while idle (e.g. the OOM killer): nothing was running on it, so quietly
            # replace it rather than fail the request.
            chosen.kill()
            replacement = self._replace(chosen)
            if replacement is None:
                raise WorkerCrashed("The action runtime is shutting down.")
            if replacement is chosen:
                self._checkin(chosen)
                raise WorkerCrashed("No sandbox worker could be started; try again shortly.")
            chosen = replacement
        return chosen

    def _take_statuses(self) -> bool:
        """Under the lock: hear from idle workers that were closing a context; retire those that
        ask for it. True if any idle worker is left."""
        for worker in [worker for worker in self._idle if worker.closing]:
            worker.take_status()
            if worker.retire_requested:
                self._idle.remove(worker)
                self._in_background(self._retire, worker)
        return bool(self._idle)

    def _replace(self, dead: WorkerProcess) -> WorkerProcess | None:
        """Start a worker in place of `dead` (already killed); None once the pool is closed.

        If no process can be started right now (fork failed), `dead` itself is returned to keep
        its slot: whoever checks it out next finds it dead and tries again.
        """
        with self._condition:
            if self._closed:
                self._workers = [worker for worker in self._workers if worker is not dead]
                return None
        try:
            replacement = WorkerProcess()
        except OSError:
            return dead
        with self._condition:
            self._workers = [replacement if worker is dead else worker for worker in self._workers]
        return replacement

    def _checkin(self, worker: WorkerProcess | None) -> None:
        if worker is None:
            return
        with self._condition:
            if not self._closed:
                self._idle.append(worker)
                self._condition.notify()
                return
        worker.stop()

    def run(self, isolate_key: str, frame: bytes, *, time_limit_seconds: float) -> dict[str, Any]:
        """Run one encoded execute request on a worker; raises WorkerCrashed, or WorkerHung when
        the worker has not answered (or none was free) by the time limit plus ANSWER_SLACK of it,
        counted from this call."""
        entered = time.monotonic()
        deadline = entered + time_limit_seconds * (1 + ANSWER_SLACK)
        worker = self._checkout(isolate_key, deadline)
        sent = False
        try:
            worker.wait_until_ready(deadline)
            queued = time.monotonic() - entered
            if queued >= time_limit_seconds:
                raise WorkerHung  # the time went on waiting: not worth sending
            if queued > QUEUED_NOTICE_SECONDS:
                frame = encode_frame({"queued_ms": queued * 1000}) + frame
            sent = True
            reply = worker.request(frame, deadline=deadline)
        except WorkerHung:
            if sent:
                self._in_background(self._await_late_reply, worker, isolate_key)
            elif worker.ready:
                self._checkin(worker)
            else:
                self._in_background(self._checkin_when_ready, worker)
            raise
        except WorkerCrashed:
            # Starting the process takes milliseconds; its start-up (V8, the first context) is
            # waited for off the caller's thread.
            self._in_background(self._checkin_when_ready, self._replace(worker))
            raise
        except BaseException:
            # Anything else (KeyboardInterrupt in the middle of a request) leaves the pipe in an
            # unknown state: do not hand this worker to anyone else.
            worker.kill()
            self._in_background(self._checkin_when_ready, self._replace(worker))
            raise
        self._take_back(worker, isolate_key, reply)
        return reply

    @staticmethod
    def _in_background(work: Callable[..., None], *arguments: Any) -> None:
        threading.Thread(target=work, args=arguments, name="actions-runtime-pool", daemon=True).start()

    def _take_back(self, worker: WorkerProcess, isolate_key: str, reply: dict[str, Any]) -> None:
        worker.note_reply(isolate_key, reply)
        if reply.get("retire"):
            # The worker holds memory it cannot give back (see IsolateCache.tidy), or a context
            # it cannot close: start afresh, without keeping the caller waiting for it.
            self._in_background(self._retire, worker)
        else:
            self._checkin(worker)

    def _await_late_reply(self, worker: WorkerProcess, isolate_key: str) -> None:
        """The caller has been answered: give the worker GRACE_SECONDS more, then replace it."""
        try:
            reply = worker.finish_late_request(deadline=time.monotonic() + GRACE_SECONDS)
        except (WorkerHung, WorkerCrashed):
            self._replace_and_checkin(worker)
            return
        self._take_back(worker, isolate_key, reply)

    def _retire(self, worker: WorkerProcess) -> None:
        worker.stop()
        self._replace_and_checkin(worker)

    def _replace_and_checkin(self, dead: WorkerProcess) -> None:
        """Kill `dead` if need be and hand out a ready replacement in its place."""
        dead.kill()
        self._checkin_when_ready(self._replace(dead))

    def _checkin_when_ready(self, worker: WorkerProcess | None) -> None:
        if worker is None:
            return
        # A worker that cannot start is found dead at its next checkout and replaced then.
        with contextlib.suppress(WorkerCrashed):
            worker.wait_until_ready()
        self._checkin(worker)

    def has_live_worker(self) -> bool:
        """Whether any worker process has started and is running. Idle workers found dead are
        replaced off this thread: a probe that finds them so must not wait for the next request
        to get them back."""
        with self._condition:
            for worker in [worker for worker in self._idle if not worker.is_alive()]:
                self._idle.remove(worker)
                self._in_background(self._replace_and_checkin, worker)
            return any(worker.ready and worker.is_alive() for worker in self._workers)

    def all_idle(self) -> bool:
        """Whether every worker has started and none is serving a request."""
        with self._condition:
            return len(self._idle) == len(self._workers)

    def worker_pids(self) -> list[int]:
        with self._condition:
            return [worker.pid for worker in self._workers]

    def warm_keys_by_worker(self) -> dict[int, list[str]]:
        """What the pool believes each worker (by pid) holds warm, least recently used first."""
        with self._condition:
            return {worker.pid: list(worker.warm_keys) for worker in self._workers}

    def close(self) -> None:
        with self._condition:
            self._closed = True
            workers = list(self._workers)
            idle = list(self._idle)
            self._idle.clear()
            self._condition.notify_all()
        for worker in idle:
            worker.stop()
        for worker in workers:
            if worker not in idle:
                # Busy: only signal it. The thread waiting on it owns its pipes, sees them close,
                # reports worker_crashed and cleans up; closing them here could hand that thread
                # a reused file descriptor.
                worker.send_kill()

    def abandon(self) -> None:
        for worker in self._workers:
            worker.abandon()
