"""`manage.py verify_audit [--tenant SLUG]`: check each tenant's audit hash chain (audit_app.chain)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit_app.chain import chain_anchor, verify_chain
from audit_app.models import AuditChainHead
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Verify the audit hash chain of every tenant (or one) and report the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Verify only this tenant (default: all tenants).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.order_by("slug")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        broken = False
        for tenant in tenants:
            chain_break = verify_chain(tenant)
            if chain_break is None:
                self.stdout.write(f"{tenant.slug}: OK{self._anchor_note(tenant)}")
            else:
                broken = True
                self.stdout.write(f"{tenant.slug}: BROKEN at {chain_break}")
        if broken:
            # Exit status 1 (not CommandError's message-only failure) so cron and CI can alert on it.
            sys.exit(1)

    @staticmethod
    def _anchor_note(tenant: Tenant) -> str:
        """After a retention purge: where the verified chain starts, for comparing with the
        anchor recorded elsewhere (the audit.purged event, an off-site copy of the output)."""
        anchor = chain_anchor(AuditChainHead.objects.filter(tenant=tenant).first())
        if not anchor.seq:
            return ""
        return f" (events 1–{anchor.seq} purged; chain anchored at seq {anchor.seq}, hash {anchor.hash})"
