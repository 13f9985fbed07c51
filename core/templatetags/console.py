import json
from typing import Any

from django import template
from django.utils.http import urlencode

register = template.Library()


@register.simple_tag
def query_string(params: dict[str, Any], **overrides: Any) -> str:
    """`params` with `overrides` applied, URL-encoded; empty values are dropped to keep URLs short."""
    merged = {**params, **overrides}
    return urlencode({key: value for key, value in merged.items() if value not in ("", None)})


@register.filter
def next_sort(query: Any, key: str) -> str:
    """Clicking a sorted column header flips its direction; another column starts ascending."""
    return f"-{key}" if query.sort == key else key


@register.filter
def as_json(value: Any) -> str:
    """Pretty JSON for showing results and configs (autoescaped by the template)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def milliseconds(value: Any) -> str:
    """A duration for people: "2.3 ms", and "< 0.1 ms" rather than a misleading "0.0 ms" for a
    template that ran in microseconds."""
    try:
        duration = float(value)
    except (TypeError, ValueError):
        return "—"
    return "< 0.1 ms" if 0 <= duration < 0.05 else f"{duration:.1f} ms"
