"""Create a management-API token for a tenant and print it once (contract §10)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.acting import Acting
from tenants.models import API_SCOPES, Tenant
from tenants.services import TokenError, create_api_token


class Command(BaseCommand):
    help = "Create an API token for a tenant; the token is printed once and stored only as a hash."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("--name", required=True, help="A name to recognise the token by")
        parser.add_argument(
            "--scopes",
            nargs="+",
            default=API_SCOPES,
            help=f"Scopes (space or comma separated). Default: all of {' '.join(API_SCOPES)}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        scopes = [scope for item in options["scopes"] for scope in item.replace(",", " ").split()]
        try:
            _, secret = create_api_token(
                tenant, name=options["name"], scopes=scopes, acting=Acting.platform("create_api_token")
            )
        except TokenError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(secret)
