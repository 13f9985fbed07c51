"""The background work of flows, in rounds: webhook deliveries (`deliver_due`) and settling flow
runs' records (`flows_app.run_records.settle_pending`).

Production runs each as its own process (`manage.py run_outbox_worker`, `manage.py settle_runs`);
`make run` runs both in one thread of the dev server."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from django.db import connections

from flows_app.heartbeat import Heartbeat
from flows_app.outbound.outbox import deliver_due
from flows_app.run_records import SETTLE_BATCH_RUNS, settle_pending

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 50

_worker_lock = threading.Lock()
_worker_thread: threading.Thread | None = None
_worker_stop = threading.Event()


def run_rounds(
    stop: threading.Event,
    work_round: Callable[[], bool],
    *,
    interval_s: float,
    what: str,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Call `work_round` until `stop` is set. It answers whether it left work behind (a full
    batch): then the next round starts at once, otherwise after `interval_s`. After every round
    the heartbeat (if any) records that the loop is alive and how the round went."""
    while not stop.is_set():
        more = False
        succeeded = False
        try:
            more = work_round()
            succeeded = True
        except Exception:
            # The database may be briefly away (restart, failover); the next round tries again.
            logger.exception("%s round failed", what)
        finally:
            if heartbeat is not None:
                heartbeat.beat(succeeded)
            # A long-lived thread must not keep a connection the server may since have dropped, nor hold one
            # idle between rounds.
            connections.close_all()
        if not more:
            stop.wait(interval_s)


def run_delivery_loop(
    stop: threading.Event,
    *,
    interval_s: float = 1.0,
    limit: int = DEFAULT_BATCH_SIZE,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Deliver due rows round after round until `stop` is set; a full batch goes straight on to the next."""
    run_rounds(
        stop,
        lambda: deliver_due(limit=limit) >= limit,
        interval_s=interval_s,
        what="Webhook delivery",
        heartbeat=heartbeat,
    )


def run_settle_loop(
    stop: threading.Event,
    *,
    interval_s: float = 0.5,
    limit: int = SETTLE_BATCH_RUNS,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Settle pending flow runs round after round until `stop` is set."""
    run_rounds(
        stop, lambda: settle_pending(limit) >= limit, interval_s=interval_s, what="Run settling", heartbeat=heartbeat
    )


def run_until_signalled(loop: Callable[[threading.Event], None], say: Callable[[str], None]) -> None:
    """Run `loop` (one of the loops above) until SIGTERM or SIGINT, which let the round in progress finish."""
    stop = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        say(f"{signal.Signals(signal_number).name}: stopping after the current round.")
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        loop(stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _development_round() -> bool:
    delivered = deliver_due(limit=DEFAULT_BATCH_SIZE)
    settled = settle_pending()
    return delivered >= DEFAULT_BATCH_SIZE or settled >= SETTLE_BATCH_RUNS


def start_in_process_worker(interval_s: float = 1.0) -> threading.Thread:
    """Deliver webhooks and settle runs in a daemon thread of this process, once; later calls
    return the same thread.

    For the single-process development set-up (`make run`); production runs the two commands.
    """
    global _worker_thread
    with _worker_lock:
        if _worker_thread is not None and _worker_thread.is_alive():
            return _worker_thread
        _worker_stop.clear()
        _worker_thread = threading.Thread(
            target=run_rounds,
            args=(_worker_stop, _development_round),
            kwargs={"interval_s": interval_s, "what": "Background"},
            name="flows-background-worker",
            daemon=True,
        )
        _worker_thread.start()
        return _worker_thread


def stop_in_process_worker(timeout_s: float = 10.0) -> None:
    """Ask the in-process worker to stop after its current round and wait for it (tests, clean shutdown)."""
    global _worker_thread
    with _worker_lock:
        thread = _worker_thread
        _worker_stop.set()
        if thread is not None:
            thread.join(timeout_s)
        _worker_thread = None
