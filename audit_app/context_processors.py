"""Template context about flow runs, for every page (base.html)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from audit_app.reading import UNRECORDED_IN_REQUEST


def unrecorded_runs(request: HttpRequest) -> dict[str, Any]:
    """What this request's readers left unrecorded (a backlog of runs), for base.html's notice."""
    unrecorded = UNRECORDED_IN_REQUEST.get()
    return {"unrecorded_runs": unrecorded} if unrecorded else {}
