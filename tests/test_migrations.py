"""Every model change ships with its migration: a missing one would fail the release's migrate."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_is_missing_its_migration() -> None:
    output = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=output, stderr=output)
    except SystemExit as exit_:
        pytest.fail(f"makemigrations found changes without a migration:\n{output.getvalue()} (exit {exit_.code})")
