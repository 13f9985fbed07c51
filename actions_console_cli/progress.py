"""A small progress bar on stderr: one redrawn line on a terminal, plain lines otherwise (CI logs,
pipes), so the table on stdout stays clean either way."""

from __future__ import annotations

import shutil
import threading
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, title: str, stream: TextIO, *, enabled: bool = True) -> None:
        self.total = total
        self.title = title
        self.stream = stream
        self.enabled = enabled and total > 0
        self.interactive = self.enabled and stream.isatty()
        self.done = 0
        self._lock = threading.Lock()
        if self.interactive:
            self._draw("")

    def advance(self, label: str, outcome: str) -> None:
        """One more item finished; `outcome` is a few words about it."""
        with self._lock:
            self.done += 1
            if not self.enabled:
                return
            if self.interactive:
                self._draw(f"{label}: {outcome}")
            else:
                self.stream.write(f"{self.title} [{self.done}/{self.total}] {label}: {outcome}\n")
                self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, last: str) -> None:
        width = 24
        filled = width * self.done // self.total
        bar = "#" * filled + "-" * (width - filled)
        line = f"{self.title} [{bar}] {self.done}/{self.total} {last}"
        columns = shutil.get_terminal_size((100, 20)).columns
        # Clear to the end of the line so a shorter label leaves nothing of the previous one.
        self.stream.write("\r" + line[: columns - 1] + "\x1b[K")
        self.stream.flush()
