"""`manage.py verify_audit [--tenant SLUG]`: check each tenant's audit hash chain (audit_app.chain)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import InterfaceError, OperationalError

from audit_app.chain import ChainReport, chain_anchor, read_chain_head, verify_tenant
from audit_app.unreadable import UnreadableTenant, cannot_read, tenants_in_slug_order
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Verify the audit hash chain of every tenant (or one), and the execution records the chain's "
        "digests cover, and report the first broken link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Verify only this tenant (default: all tenants).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant"] and not Tenant.objects.filter(slug=options["tenant"]).exists():
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        broken = False
        for tenant in tenants_in_slug_order(options["tenant"]):
            line, tenant_broken = self._verified(tenant)
            broken |= tenant_broken
            self.stdout.write(line)
        if broken:
            # Exit status 1 (not CommandError's message-only failure) so cron and CI can alert on it.
            sys.exit(1)

    def _verified(self, tenant: Tenant | UnreadableTenant) -> tuple[str, bool]:
        """The line to print for the tenant, and whether it is broken."""
        try:
            report = verify_tenant(tenant.pk)
        except (OperationalError, InterfaceError) as error:
            if not cannot_read(error):
                raise  # the database went away: nothing can be said about any chain
            return f"{tenant}: BROKEN (could not be verified: {type(error).__name__}: {error})", True
        except Exception as error:
            # Corruption no check foresaw: this tenant cannot be vouched for, and the others are
            # still verified.
            return f"{tenant}: BROKEN (could not be verified: {type(error).__name__}: {error})", True
        if isinstance(tenant, UnreadableTenant):
            # Events name their tenant by id, so the chain can be checked; the row still needs a person.
            chain = "its chain holds" if report.chain_break is None else f"its chain is broken at {report.chain_break}"
            return f"{tenant}: BROKEN (the tenant row cannot be read: {tenant.problem}; {chain})", True
        if report.chain_break is not None:
            return f"{tenant.slug}: BROKEN at {report.chain_break}", True
        notes = [*self._anchor_notes(tenant), *self._record_notes(report)]
        return f"{tenant.slug}: OK" + (f" ({'; '.join(notes)})" if notes else ""), False

    @staticmethod
    def _anchor_notes(tenant: Tenant) -> list[str]:
        """After a retention purge: where the verified chain starts, for comparing with the
        anchor recorded elsewhere (the audit.purged event, an off-site copy of the output)."""
        anchor = chain_anchor(read_chain_head(tenant))
        if not anchor.seq:
            return []
        return [f"events 1–{anchor.seq} purged", f"chain anchored at seq {anchor.seq}, hash {anchor.hash}"]

    @staticmethod
    def _record_notes(report: ChainReport) -> list[str]:
        """How many records outside the audit table the chain vouches for (by the digests in
        their events), and how many predate digests and rest on their events' own fields only."""
        notes = []
        for records in sorted(report.records_matched.keys() | report.records_without_digest.keys()):
            if report.records_matched.get(records):
                notes.append(f"{report.records_matched[records]} {records} match their events' digests")
            if report.records_without_digest.get(records):
                notes.append(f"{report.records_without_digest[records]} {records} predate digests and are not covered")
        return notes
