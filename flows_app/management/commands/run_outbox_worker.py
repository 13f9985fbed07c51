"""Send queued webhook deliveries (webhook-emit, slack-notify): the production worker process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows_app.heartbeat import Heartbeat
from flows_app.outbound.outbox import deliver_due
from flows_app.outbound.worker import DEFAULT_BATCH_SIZE, run_delivery_loop, run_until_signalled


class Command(BaseCommand):
    help = (
        "Deliver due webhook deliveries, retrying failures with back-off. Runs until SIGTERM/SIGINT "
        "(finishing the delivery in progress), or with --once until nothing is due. Several may run at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Deliver what is due now, then exit.")
        parser.add_argument(
            "--heartbeat-file",
            type=Path,
            help="Rewrite this file after every round, for `manage.py check_heartbeat FILE` (a liveness probe).",
        )
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between rounds when idle.")
        parser.add_argument("--limit", type=int, default=DEFAULT_BATCH_SIZE, help="Deliveries claimed per round.")

    def handle(self, *args: Any, **options: Any) -> None:
        interval_s: float = options["interval"]
        limit: int = options["limit"]
        if interval_s <= 0 or limit < 1:
            raise CommandError("--interval must be positive and --limit at least 1.")
        if options["once"]:
            total = 0
            while True:
                sent = deliver_due(limit=limit)
                total += sent
                # A failed attempt is scheduled in the future, so rounds stop once the backlog is through.
                if sent < limit:
                    break
            self.stdout.write(f"Sent {total} deliveries.")
            return
        self.stdout.write(f"Outbox worker running (every {interval_s:g} s, up to {limit} per round).")
        heartbeat = Heartbeat(options["heartbeat_file"]) if options["heartbeat_file"] else None
        run_until_signalled(
            lambda stop: run_delivery_loop(stop, interval_s=interval_s, limit=limit, heartbeat=heartbeat),
            self.stderr.write,
        )
        self.stdout.write("Outbox worker stopped.")
