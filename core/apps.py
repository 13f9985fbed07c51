from django.apps import AppConfig


class CoreConfig(AppConfig):
    # An app only so Django finds the template filters shared by every app (templatetags/).
    name = "core"
    verbose_name = "Core"
