"""Numbers that arrive as text (ids in URLs, page links, form fields) never end in a server error."""

from __future__ import annotations

from typing import Any

import pytest

from core.http import parse_count
from tests.factories import add_custom_action


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42", 42), (" 7 ", 7), ("0", 0), ("²", None), ("٣", None), ("-1", None), ("1e3", None), ("", None)],
)
def test_parse_count_takes_ascii_digits_only(text: str, expected: int | None) -> None:
    assert parse_count(text) == expected


def test_parse_count_refuses_what_would_overflow_a_bigint() -> None:
    assert parse_count("9" * 18) == int("9" * 18)
    assert parse_count("9" * 19) is None
    assert parse_count("1234567890", max_digits=9) is None


@pytest.mark.parametrize(
    ("url", "expected_status"),
    [
        ("/t/acme/audit/%C2%B2/", 404),
        ("/t/acme/audit/99999999999999999999999/", 404),
        ("/t/acme/audit/timeline/?bucket=%C2%B2", 200),
        ("/t/acme/actions/numbers-action/?replay=%C2%B2", 200),
        ("/t/acme/actions/numbers-action/?replay=99999999999999999999999", 200),
        ("/platform/security-log/?before=99999999999999999999999", 404),  # staff only: 404 to an owner
    ],
)
def test_odd_numbers_in_urls_are_not_server_errors(client: Any, personas: Any, url: str, expected_status: int) -> None:
    add_custom_action(personas.tenant_a, "numbers-action")
    client.force_login(personas.owner)
    client.raise_request_exception = False
    assert client.get(url).status_code == expected_status


def test_the_timeline_names_an_odd_bucket(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    assert "Choose 1, 5, 10 or 60 minutes." in client.get("/t/acme/audit/timeline/?bucket=%C2%B2").content.decode()
