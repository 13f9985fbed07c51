"""Hostile numbers and requests answer 4xx naming what is wrong, never a 500: ids past what the
database holds, digits of other scripts, a Content-Length that is no number, API paths that do not exist."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils.http import urlencode

from tests.factories import bearer, editor_post, error_fields

# e. Numbers in links too large for the database


@pytest.mark.parametrize("number", ["99999999999999999999", "9223372036854775808", "1" * 5000, "٣", "-1", "1e3"])
def test_a_revision_number_out_of_range_is_a_404(client: Any, personas: Any, number: str) -> None:
    client.force_login(personas.editor)
    assert client.get("/t/acme/flows/login/revisions/diff/", {"from": number, "to": "1"}).status_code == 404
    assert client.get("/t/acme/flows/login/revisions/diff/", {"from": "1", "to": number}).status_code == 404


def test_a_row_button_with_a_huge_index_changes_nothing(client: Any, personas: Any) -> None:
    row = {"type": "object", "properties": {"host": {"type": "string"}}}
    schema = {"type": "object", "properties": {"rules": {"type": "array", "items": row}}}
    client.force_login(personas.editor)
    data = editor_post(config_schema=json.dumps(schema))
    for button in ("1" * 5000, "٣"):
        data_with = {
            **data,
            f"test-config-rules-remove-row-{button}": "Remove",
            f"test-config-rules.{button}.host": "a",
        }
        body = urlencode(data_with, doseq=True)  # multipart refuses a field name this long itself
        response = client.post("/t/acme/actions/new/test/", body, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200


@pytest.mark.parametrize("typed", ["1" * 5000, "٣", "９"])
def test_a_config_integer_is_plain_ascii_digits_of_sane_length(client: Any, personas: Any, typed: str) -> None:
    schema = {"type": "object", "properties": {"limit": {"type": "integer"}, "ratio": {"type": "number"}}}
    client.force_login(personas.editor)
    for name in ("limit", "ratio"):
        data = editor_post(config_schema=json.dumps(schema), **{f"test-config-{name}": typed})
        html = client.post("/t/acme/actions/new/test/", data).content.decode()
        assert "Fix the test config" in html, name


# f. A Content-Length that is not a number


@pytest.mark.parametrize("length", ["abc", "1e9", "10, 10", "-1", "1_0", "٣"])
def test_a_malformed_content_length_is_a_400_naming_it(client: Any, personas: Any, api_token: Any, length: str) -> None:
    token = api_token("actions:write")
    response = client.post(
        "/api/v1/actions", data=b"{}", content_type="application/json", headers=bearer(token), CONTENT_LENGTH=length
    )
    assert response.status_code == 400
    assert "Content-Length" in error_fields(response)
    client.force_login(personas.editor)
    page = client.post("/t/acme/actions/schema-preview/", {"config_schema": "{}"}, CONTENT_LENGTH=length)
    assert page.status_code == 400 and "Content-Length" in page.content.decode()


# h. Paths the API does not have


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/actions/..%2f..", "/api/", "/api/v2/actions"])
def test_an_unknown_api_path_is_a_404_in_the_error_shape(client: Any, personas: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_console_path_keeps_its_page(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.get("/t/acme/nope/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("typed", ["9_0", "９０", "٩٠", "nan", "inf", "1e999", "0x5a"])
def test_try_it_takes_only_ascii_decimal_risk_scores(client: Any, personas: Any, typed: str) -> None:
    client.force_login(personas.editor)
    post = {"try-trigger": "login.post-auth", "try-email": "j@example.com", "try-ip": "203.0.113.9"}
    response = client.post("/t/acme/flows/login/try/", {**post, "try-risk_score": typed})
    assert response.status_code == 422, typed
    assert "Enter a number" in response.content.decode()
    for fine in ("90", "90.5", " 12 ", "1e1", "0"):
        response = client.post("/t/acme/flows/login/try/", {**post, "try-risk_score": fine})
        assert response.status_code == 200, fine


@pytest.mark.parametrize("limit", ["99999999999999999999", "1" * 5000, "٣", "1e3", "-1"])
def test_a_page_size_of_any_spelling_is_no_crash(client: Any, personas: Any, api_token: Any, limit: str) -> None:
    token = api_token("actions:read", "flows:read")
    for path in ("/api/v1/actions", "/api/v1/flows"):
        response = client.get(path, {"limit": limit}, headers=bearer(token))
        assert response.status_code in (200, 400, 422), (path, limit)
        if response.status_code != 200:
            assert "limit" in error_fields(response)
