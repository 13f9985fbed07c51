"""Running `deliver_due` in the background: a thread for `make run`, a loop for the management command."""

from __future__ import annotations

import logging
import threading

from django.db import connections

from flows_app.outbound.outbox import deliver_due

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 50

_worker_lock = threading.Lock()
_worker_thread: threading.Thread | None = None
_worker_stop = threading.Event()


def run_delivery_loop(stop: threading.Event, *, interval_s: float = 1.0, limit: int = DEFAULT_BATCH_SIZE) -> None:
    """Deliver due rows round after round until `stop` is set; a full batch goes straight on to the next."""
    while not stop.is_set():
        sent = 0
        try:
            sent = deliver_due(limit=limit)
        except Exception:
            # The database may be briefly away (restart, failover); the next round tries again.
            logger.exception("Webhook delivery round failed")
        finally:
            # A long-lived thread must not keep a connection the server may since have dropped, nor hold one
            # idle between rounds.
            connections.close_all()
        if sent < limit:
            stop.wait(interval_s)


def start_in_process_worker(interval_s: float = 1.0) -> threading.Thread:
    """Start the delivery loop in a daemon thread of this process, once; later calls return the same thread.

    For the single-process development set-up (`make run`); production runs `manage.py run_outbox_worker`.
    """
    global _worker_thread
    with _worker_lock:
        if _worker_thread is not None and _worker_thread.is_alive():
            return _worker_thread
        _worker_stop.clear()
        _worker_thread = threading.Thread(
            target=run_delivery_loop,
            args=(_worker_stop,),
            kwargs={"interval_s": interval_s},
            name="webhook-outbox-worker",
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
