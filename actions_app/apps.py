from django.apps import AppConfig


class ActionsAppConfig(AppConfig):
    name = "actions_app"
    verbose_name = "Actions"

    def ready(self) -> None:
        from actions_app import signals  # noqa: F401  (post_migrate catalogue sync)
