"""Template filters about action versions."""

from __future__ import annotations

from typing import Any

from django import template

from actions_app.models import newer_published_for

register = template.Library()


@register.filter
def newer_in(binding: Any, versions: list[Any]) -> Any:
    """{{ binding|newer_in:versions }}: the version upgrading `binding` would offer, or None."""
    return newer_published_for(versions, binding.pinned_version, binding.trigger)
