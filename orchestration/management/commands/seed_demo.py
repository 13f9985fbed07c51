"""Demo tenants and operators (contract §10). Safe to run again: it only adds what is missing."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from orchestration.demo_history import founded_at, seed_demo_history
from orchestration.founding import create_tenant
from tenants.acting import Acting, recording_history_at
from tenants.models import Membership, Tenant
from tenants.roles import Role
from tenants.services import add_member

DEMO_PASSWORD = "demo-pass-123"
DEMO_TENANTS = [("acme", "Acme Corporation"), ("globex", "Globex")]
DEMO_OPERATORS = [
    # username, tenant, role, full name
    ("alice", "acme", Role.OWNER, "Alice Owner"),
    ("eddie", "acme", Role.EDITOR, "Eddie Editor"),
    ("victor", "acme", Role.VIEWER, "Victor Viewer"),
    ("gina", "globex", Role.OWNER, "Gina Owner"),
]


class Command(BaseCommand):
    help = "Create the demo tenants and operators (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        acting = Acting.platform("seed_demo")
        user_model = get_user_model()
        founded = founded_at(timezone.now())
        with transaction.atomic():
            tenants = {}
            # The tenants and their members came to be a day before the demo's history.
            with recording_history_at(founded):
                for slug, name in DEMO_TENANTS:
                    tenant = Tenant.objects.filter(slug=slug).first()
                    tenants[slug] = tenant or create_tenant(slug=slug, name=name)
                for username, tenant_slug, role, full_name in DEMO_OPERATORS:
                    first, last = full_name.split(" ", 1)
                    user, created = user_model.objects.get_or_create(
                        username=username,
                        defaults={"email": f"{username}@example.com", "first_name": first, "last_name": last},
                    )
                    if created:
                        user.set_password(DEMO_PASSWORD)
                        user.save()
                    tenant = tenants[tenant_slug]
                    if not Membership.objects.filter(tenant=tenant, user=user).exists():
                        add_member(tenant, user, role, acting=acting)
            users = {u.username: u for u in user_model.objects.filter(username__in=["alice", "eddie"])}
            if seed_demo_history(tenants["acme"], editor=users["eddie"], admin=users["alice"]):
                self.stdout.write("Added acme's custom actions, login bindings and three days of sign-ins.")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Sign in as alice / eddie / victor (acme) or gina (globex), password {DEMO_PASSWORD}")
