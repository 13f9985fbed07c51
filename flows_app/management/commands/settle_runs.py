"""Settle flow runs' pending records into executions and audit events: the production worker process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows_app.heartbeat import Heartbeat
from flows_app.models import PendingRunRecord
from flows_app.outbound.worker import run_settle_loop, run_until_signalled
from flows_app.run_records import SETTLE_BATCH_RUNS, settle_pending


class Command(BaseCommand):
    help = (
        "Turn the pending records of flow runs into executions and flow.action_executed audit events. "
        "Runs until SIGTERM/SIGINT (finishing the round in progress), or with --once until nothing is "
        "pending. Several may run at once; each tenant is settled by one of them at a time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Settle what is pending now, then exit.")
        parser.add_argument(
            "--problems",
            action="store_true",
            help="List the runs set aside because they cannot be stored (tenant, record, why), then exit.",
        )
        parser.add_argument(
            "--heartbeat-file",
            type=Path,
            help="Rewrite this file after every round, for `manage.py check_heartbeat FILE` (a liveness probe).",
        )
        parser.add_argument("--interval", type=float, default=0.5, help="Seconds between rounds when idle.")
        parser.add_argument(
            "--limit", type=int, default=SETTLE_BATCH_RUNS, help="Runs per tenant per round (one transaction)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval_s: float = options["interval"]
        limit: int = options["limit"]
        if interval_s <= 0 or limit < 1:
            raise CommandError("--interval must be positive and --limit at least 1.")
        if options["problems"]:
            self._list_problems()
            return
        if options["once"]:
            total = 0
            while settled := settle_pending(limit):
                total += settled
            self.stdout.write(f"Settled {total} runs.")
            return
        self.stdout.write(f"Run settler running (every {interval_s:g} s, up to {limit} runs per tenant per round).")
        heartbeat = Heartbeat(options["heartbeat_file"]) if options["heartbeat_file"] else None
        run_until_signalled(
            lambda stop: run_settle_loop(stop, interval_s=interval_s, limit=limit, heartbeat=heartbeat),
            self.stderr.write,
        )
        self.stdout.write("Run settler stopped.")

    def _list_problems(self) -> None:
        set_aside = PendingRunRecord.objects.exclude(problem="").select_related("tenant").order_by("tenant__slug", "id")
        count = 0
        for record in set_aside.iterator():
            self.stdout.write(f"{record.tenant.slug}\t{record.pk}\t{record.problem}")
            count += 1
        self.stdout.write(f"{count} run(s) set aside.")
