"""Hostile input answers 4xx with the field named, never a 500: deep schemas, huge versions, big bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actions_app.schema_forms import check_schema_supported
from actions_app.versioning import MAX_VERSION_PART, InvalidDraft, next_version_label
from tests.factories import CONTINUING_ACTION as GOOD
from tests.factories import bearer


def post_json(client: Any, url: str, token: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=bearer(token))


def nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def new_action(slug: str, schema: Any) -> dict[str, Any]:
    return {
        "name": slug,
        "slug": slug,
        "compatible_triggers": ["login.post-auth"],
        "config_schema": schema,
        "source": GOOD,
    }


def test_a_schema_nested_too_deep_is_named_not_a_crash(client: Any, personas: Any, api_token: Any) -> None:
    problems = check_schema_supported(nested_schema(100))
    assert len(problems) == 1 and "nested too deeply" in problems[0].message
    assert check_schema_supported(nested_schema(20)) == []

    token = api_token("actions:write")
    response = post_json(client, "/api/v1/actions", token, new_action("deep", nested_schema(100)))
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "config_schema" and "nested too deeply" in detail["message"]

    client.force_login(personas.editor)
    deep_text = json.dumps(nested_schema(100))
    preview = client.post("/t/acme/actions/schema-preview/", {"config_schema": deep_text})
    assert preview.status_code == 200 and "nested too deeply" in preview.content.decode()
    assert client.post("/t/acme/actions/sdk-types/", {"config_schema": deep_text}).status_code == 200


@pytest.mark.parametrize(
    "label", ["9223372036854775808.0.0", "1.9223372036854775808.0", "1.0.2147483648", "1" + "0" * 40 + ".0.0"]
)
def test_an_explicit_version_past_what_can_be_stored_is_refused(
    client: Any, personas: Any, api_token: Any, label: str
) -> None:
    token = api_token("actions:write")
    assert post_json(client, "/api/v1/actions", token, new_action("big-version", {"type": "object"})).status_code == 201
    response = post_json(
        client, "/api/v1/actions/big-version/versions", token, {"source": GOOD + "// next", "version": label}
    )
    assert response.status_code == 422, response.content
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "version" and str(MAX_VERSION_PART) in detail["message"]


def test_the_highest_version_can_be_saved_but_not_bumped_past() -> None:
    top = f"1.0.{MAX_VERSION_PART}"
    assert next_version_label("1.0.0", explicit=top) == top
    with pytest.raises(InvalidDraft) as refused:
        next_version_label(top, "patch")
    assert "bump" in refused.value.errors
    assert next_version_label(top, "minor") == "1.1.0"


def test_an_api_body_over_the_limit_is_413_in_the_error_shape(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:write")
    body = json.dumps(new_action("huge", {"type": "object"}) | {"name": "x" * (3 * 1024 * 1024)})
    response = client.post("/api/v1/actions", data=body, content_type="application/json", headers=bearer(token))
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and "2.5 MiB" in error["message"]
    assert error["details"] == [{"field": "body", "message": error["message"]}]


def test_a_form_over_the_limit_gets_a_page_that_says_so(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    response = client.post("/t/acme/actions/schema-preview/", {"config_schema": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    assert "larger than the 2.5 MiB limit" in response.content.decode()


def test_too_many_fields_in_a_form_is_a_clear_400(client: Any, personas: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client.force_login(personas.editor)
    response = client.post("/t/acme/actions/schema-preview/", {f"field{n}": "x" for n in range(20)})
    assert response.status_code == 400
    assert "number of GET/POST parameters exceeded" in response.content.decode()
