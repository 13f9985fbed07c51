"""`manage.py purge_audit [--tenant SLUG] [--dry-run] [--max-events N]`: apply each tenant's audit
retention (audit_app.retention) and, for a run over all tenants, the platform security log's
(SECURITY_LOG_RETENTION_DAYS). Meant for a daily cron job."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit_app.retention import ChainBrokenBeforePurge, PurgePlan, plan_purge, purge_tenant
from audit_app.security import purge_security_log
from audit_app.unreadable import UnreadableTenant, tenants_in_slug_order
from tenants.acting import Acting
from tenants.models import Tenant


def _kept(plan: PurgePlan) -> str:
    if plan.retention_days is None:
        return "keeps events forever"
    return f"keeps {plan.retention_days} days"


class Command(BaseCommand):
    help = (
        "Delete audit events older than each tenant's retention (the oldest part of its hash chain), "
        "anchor the rest and record an audit.purged event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Purge only this tenant (default: all tenants).")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be purged; delete nothing.")
        parser.add_argument(
            "--max-events",
            type=int,
            metavar="N",
            help="Delete at most N events per tenant in this run (the oldest); run again to continue.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        max_events = options["max_events"]
        if max_events is not None and max_events < 1:
            raise CommandError("--max-events must be at least 1.")
        if options["tenant"] and not Tenant.objects.filter(slug=options["tenant"]).exists():
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        refused = False
        for tenant in tenants_in_slug_order(options["tenant"]):
            if isinstance(tenant, UnreadableTenant):
                # A corrupt tenant row needs a person before anything of that tenant is deleted.
                refused = True
                self.stdout.write(f"{tenant}: REFUSED, the tenant row cannot be read: {tenant.problem}")
                continue
            try:
                if options["dry_run"]:
                    plan = plan_purge(tenant, max_events=max_events)
                    self.stdout.write(f"{tenant.slug}: would purge {self._span(plan)} ({_kept(plan)})")
                    continue
                result = purge_tenant(tenant, acting=Acting.platform("purge_audit"), max_events=max_events)
            except ChainBrokenBeforePurge as refusal:
                refused = True
                self.stdout.write(f"{tenant.slug}: REFUSED, {refusal}")
                continue
            plan = result.plan
            if not result.purged_events:
                self.stdout.write(f"{tenant.slug}: nothing to purge ({_kept(plan)})")
            else:
                self.stdout.write(
                    f"{tenant.slug}: purged {self._span(plan)} ({_kept(plan)}); "
                    f"chain anchored at seq {plan.through_seq}"
                )
        if not options["tenant"]:
            count = purge_security_log(dry_run=options["dry_run"])
            verb = "would purge" if options["dry_run"] else "purged"
            self.stdout.write(f"security log: {verb} {count} entries older than the retention")
        if refused:
            # Exit status 1 so cron alerts: a broken chain needs a person, not another run.
            sys.exit(1)

    @staticmethod
    def _span(plan: PurgePlan) -> str:
        if not plan.event_count:
            return "0 events"
        noun = "event" if plan.event_count == 1 else "events"
        return f"{plan.event_count} {noun} (seq {plan.anchored_seq + 1}–{plan.through_seq})"
