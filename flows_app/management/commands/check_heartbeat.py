"""`manage.py check_heartbeat FILE [--max-age SECONDS]`: a liveness probe for settle_runs and
run_outbox_worker started with `--heartbeat-file FILE` (exit 0 alive, 1 not)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from flows_app.heartbeat import read_heartbeat


class Command(BaseCommand):
    help = "Exit 0 if the background process writing FILE finished a round within --max-age seconds, else 1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--max-age", type=float, default=30.0, help="Seconds a heartbeat stays fresh.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            age, state = read_heartbeat(path)
        except (OSError, ValueError) as error:
            self.stdout.write(f"NOT ALIVE: no readable heartbeat at {path} ({type(error).__name__}).")
            sys.exit(1)
        summary = f"pid {state.get('pid')}, {state.get('rounds')} rounds, last round {state.get('last_round')}"
        if age > options["max_age"]:
            self.stdout.write(f"NOT ALIVE: last heartbeat {age:.0f} s ago ({summary}).")
            sys.exit(1)
        self.stdout.write(f"ALIVE: last heartbeat {age:.1f} s ago ({summary}).")
