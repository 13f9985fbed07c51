"""Helpers for the Playwright tests (the `browser`, `page` and `console_errors` fixtures are in
conftest.py)."""

from __future__ import annotations

from typing import Any

from tests.factories import PASSWORD


def sign_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
