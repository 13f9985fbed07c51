"""After `migrate`, bring every tenant's catalogue up to the templates this release ships."""

from typing import Any

from django.db.models.signals import post_migrate
from django.dispatch import receiver

from actions_app.services import sync_platform_templates_everywhere


@receiver(post_migrate, dispatch_uid="actions_app.sync_platform_templates")
def sync_templates_after_migrate(sender: Any, app_config: Any = None, **kwargs: Any) -> None:
    # post_migrate fires once per app; run once, after our own app's tables exist.
    if app_config is None or app_config.name != "actions_app":
        return
    sync_platform_templates_everywhere()
