"""Liveness of the background processes (`settle_runs`, `run_outbox_worker`) for an orchestrator.

Each round of a worker loop rewrites a small file (`--heartbeat-file`); `manage.py
check_heartbeat FILE` exits 0 while it is fresh. A loop that is stuck (a hung query, a deadlock)
stops rewriting it and is restarted; a loop whose rounds fail because the database is away is
alive and says so in the file, so a database outage does not make the orchestrator restart every
worker as well.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Heartbeat:
    """Rewrites `path` after every round: when, by which process, and whether the round succeeded."""

    path: Path
    rounds: int = 0
    failed_in_a_row: int = 0

    def beat(self, succeeded: bool) -> None:
        self.rounds += 1
        self.failed_in_a_row = 0 if succeeded else self.failed_in_a_row + 1
        state = {
            "pid": os.getpid(),
            "at": time.time(),
            "rounds": self.rounds,
            "last_round": "ok" if succeeded else "failed",
            "failed_in_a_row": self.failed_in_a_row,
        }
        # Written beside and renamed over, so a probe never reads half a file.
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            partial.write_text(json.dumps(state), encoding="utf-8")
            partial.replace(self.path)
        except OSError:
            pass  # a full disk must not stop the work; the probe will report the stale file


def read_heartbeat(path: Path) -> tuple[float, dict[str, Any]]:
    """How many seconds ago the heartbeat was written, and what it says; OSError/ValueError if unreadable."""
    state = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(state, dict) or not isinstance(state.get("at"), int | float):
        raise ValueError("not a heartbeat file")
    return time.time() - float(state["at"]), state
