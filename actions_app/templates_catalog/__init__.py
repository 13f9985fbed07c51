"""The platform's template Actions (contract §4): a registry in code, shipped with each release."""

from actions_app.templates_catalog.registry import (
    PLATFORM_TEMPLATES,
    PlatformTemplate,
    TemplateVersion,
    get_template,
)

__all__ = ["PLATFORM_TEMPLATES", "PlatformTemplate", "TemplateVersion", "get_template"]
