from typing import Any

from django.http import HttpRequest

from tenants.models import Tenant


def tenant_switcher(request: HttpRequest) -> dict[str, Any]:
    """The operator's tenants for the switcher in the page header (one query, lazily)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"my_tenants": Tenant.objects.for_member(user).only("slug", "name")}
