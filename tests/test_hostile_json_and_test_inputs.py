"""Hostile JSON and test inputs answer 4xx naming the field, never a 500: cursors and objects
nested too deeply, config schemas a save refuses, a loose context.risk, a request.ip that is no address."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from actions_app.sample_inputs import sample_input
from core.api_types import MAX_JSON_DEPTH
from tests.factories import CONTINUING_ACTION as GOOD
from tests.factories import bearer, editor_post, error_fields, nested, send_json
from tests.flow_helpers import custom_action

DEEP_CURSOR = base64.urlsafe_b64encode(("[" * 5000 + "]" * 5000).encode()).decode().rstrip("=")


# a. Cursors nested too deeply to read


@pytest.mark.parametrize("path", ["/api/v1/actions", "/api/v1/flows"])
def test_a_deeply_nested_cursor_is_a_400_naming_cursor(client: Any, personas: Any, api_token: Any, path: str) -> None:
    token = api_token("actions:read", "flows:read")
    response = client.get(path, {"cursor": DEEP_CURSOR}, headers=bearer(token))
    assert response.status_code == 400
    assert "not valid" in error_fields(response)["cursor"]


# b. JSON objects nested past the limit


def test_a_binding_config_nested_too_deeply_is_refused_naming_it(client: Any, personas: Any, api_token: Any) -> None:
    custom_action(personas.tenant_a, "deep-config", "return { kind: 'continue' };", ["login.pre-token"])
    token = api_token("flows:write", "flows:read")
    body = {"bindings": [{"action": "deep-config", "version": "0.1.0", "config": nested(480)}]}
    response = send_json(client, "put", "/api/v1/flows/login/slots/login.pre-token", token, body, **{"If-Match": "1"})
    assert response.status_code == 422, response.content
    assert "nested too deeply" in error_fields(response)["bindings.0.config"]

    body["bindings"][0]["config"] = nested(MAX_JSON_DEPTH)
    response = send_json(client, "put", "/api/v1/flows/login/slots/login.pre-token", token, body, **{"If-Match": "1"})
    assert response.status_code == 200, response.content


def test_every_json_object_the_api_takes_has_the_depth_limit(client: Any, personas: Any, api_token: Any) -> None:
    custom_action(personas.tenant_a, "probe", "return { kind: 'continue' };", ["login.post-auth"])
    token = api_token("actions:write", "actions:read", "runtime:execute", "flows:write")
    too_deep = nested(MAX_JSON_DEPTH + 1)
    test_url = "/api/v1/actions/probe/versions/0.1.0/test"
    sample = sample_input("login.post-auth")
    cases = [
        ("post", test_url, {"input": sample, "config": too_deep}, "config"),
        ("post", test_url, {"input": {**sample, "state": too_deep}}, "input"),
        ("post", "/api/v1/actions/probe/versions", {"source": GOOD, "config_schema": too_deep}, "config_schema"),
        (
            "post",
            "/api/v1/flows/login/run",
            {
                "trigger": "login.post-auth",
                "user": {"id": "u1", "email": "jane@example.com", "app_metadata": too_deep},
                "request": {"ip": "203.0.113.9"},
            },
            "user.app_metadata",
        ),
    ]
    for method, url, body, field in cases:
        response = send_json(client, method, url, token, body)
        assert response.status_code == 422, (url, response.content)
        assert "nested too deeply" in error_fields(response)[field], response.content


def test_json_typed_into_forms_has_the_same_depth_limit(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    try_it = {"try-trigger": "login.post-auth", "try-email": "j@example.com", "try-ip": "203.0.113.9"}
    deep_text = json.dumps(nested(MAX_JSON_DEPTH + 1))
    response = client.post(
        "/t/acme/flows/login/try/", {**try_it, "try-risk_score": "10", "try-app_metadata": deep_text}
    )
    assert response.status_code == 422 and "nested too deeply" in response.content.decode()

    sample = sample_input("login.post-auth") | {"state": nested(800)}
    response = client.post("/t/acme/actions/new/test/", editor_post(harness_input=json.dumps(sample)))
    assert response.status_code == 200 and "nested too deeply" in response.content.decode()
    response = client.post("/t/acme/actions/new/test/", editor_post(harness_input="[" * 5000 + "]" * 5000))
    assert response.status_code == 200 and "nested too deeply" in response.content.decode()


# c, d. The harness checks a draft's schema as a save does, and runs nothing when it cannot be used


@pytest.mark.parametrize(
    "schema",
    [
        2,
        [],
        "x",
        1.5,
        [{}],
        {"type": "object", "$ref": "#/nope"},
        {"type": "object", "$ref": "urn:x"},
        {"type": "object", "$dynamicRef": "#meta"},
        {"type": "object", "$defs": {"a": {"$ref": "#/$defs/a"}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
        {"type": "object", "allOf": [{"$ref": "#"}]},
        {"type": "object", "not": {"$ref": "#/nope"}},
        {"type": "object", "if": {"$ref": "#/nope"}, "then": {}},
    ],
)
def test_the_harness_shows_a_schema_a_save_would_refuse_and_runs_nothing(
    client: Any, personas: Any, schema: Any
) -> None:
    client.force_login(personas.editor)
    data = editor_post(config_schema=json.dumps(schema))
    saved = client.post("/t/acme/actions/new/", data)
    assert saved.status_code == 422
    response = client.post("/t/acme/actions/new/test/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="harness-result"' in html and "Nothing ran" in html
    schema_field = html.split('id="field-config_schema"', 1)[1].split("</div>", 1)[0]
    assert 'aria-invalid="true"' in schema_field
    fragment = client.post("/t/acme/actions/new/test/", data, headers={"HX-Request": "true"}).content.decode()
    assert "Nothing ran" in fragment and "config schema" in fragment.lower()


# i. context.risk must be an object whose score is a number


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"risk": True}, "context.risk"),
        ({"risk": "90"}, "context.risk"),
        ({"risk": 101}, "context.risk"),
        ({"risk": None}, "context.risk"),
        ({"risk": []}, "context.risk"),
        (True, "context"),
        ([], "context"),
        (None, "context"),
        ({"risk": {"score": "90"}}, "context.risk.score"),
    ],
)
def test_a_loose_risk_in_the_test_input_is_refused_naming_it(
    client: Any, personas: Any, api_token: Any, context: Any, field: str
) -> None:
    custom_action(personas.tenant_a, "probe", "return { kind: 'continue' };", ["login.post-auth"])
    token = api_token("actions:write", "runtime:execute")
    sample = sample_input("login.post-auth") | {"context": context}
    response = send_json(client, "post", "/api/v1/actions/probe/versions/0.1.0/test", token, {"input": sample})
    assert response.status_code == 422, response.content
    assert f"“{field}”" in error_fields(response)["input"]
    client.force_login(personas.editor)
    html = client.post("/t/acme/actions/new/test/", editor_post(harness_input=json.dumps(sample))).content.decode()
    assert f"“{field}”" in html and "Nothing ran" in html


def test_an_infinite_risk_is_refused(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    sample = json.dumps(sample_input("login.post-auth")).replace('{"score": 20}', "1e309")
    html = client.post("/t/acme/actions/new/test/", editor_post(harness_input=sample)).content.decode()
    assert "Nothing ran" in html


# j. request.ip is an address


BAD_ADDRESSES = ["1.2.3.4/24", "999.1.1.1", "x" * 5000, "", "::1%eth0x", " 1.2.3.4"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_the_run_api_takes_only_an_ip_address(client: Any, personas: Any, api_token: Any, address: str) -> None:
    token = api_token("runtime:execute")
    body = {
        "trigger": "login.post-auth",
        "user": {"id": "u1", "email": "jane@example.com"},
        "request": {"ip": address},
    }
    response = send_json(client, "post", "/api/v1/flows/login/run", token, body)
    assert response.status_code == 422, response.content
    assert "IPv4 or IPv6" in error_fields(response)["request.ip"]


@pytest.mark.parametrize("address", ["203.0.113.9", "2001:db8::1", "::ffff:203.0.113.9"])
def test_the_run_api_takes_both_kinds_of_address(client: Any, personas: Any, api_token: Any, address: str) -> None:
    token = api_token("runtime:execute")
    body = {"trigger": "login.post-auth", "user": {"id": "u1", "email": "jane@example.com"}, "request": {"ip": address}}
    assert send_json(client, "post", "/api/v1/flows/login/run", token, body).status_code == 200


@pytest.mark.parametrize("address", [*BAD_ADDRESSES, 12, None])
def test_the_test_input_takes_only_an_ip_address(client: Any, personas: Any, api_token: Any, address: Any) -> None:
    custom_action(personas.tenant_a, "probe", "return { kind: 'continue' };", ["login.post-auth"])
    token = api_token("actions:write", "runtime:execute")
    sample = sample_input("login.post-auth")
    sample["request"]["ip"] = address
    response = send_json(client, "post", "/api/v1/actions/probe/versions/0.1.0/test", token, {"input": sample})
    assert response.status_code == 422, response.content
    assert "“request.ip”" in error_fields(response)["input"]
    client.force_login(personas.editor)
    html = client.post("/t/acme/actions/new/test/", editor_post(harness_input=json.dumps(sample))).content.decode()
    assert "“request.ip”" in html and "Nothing ran" in html


def test_a_test_input_without_an_address_gets_the_sample_one(client: Any, personas: Any, api_token: Any) -> None:
    custom_action(personas.tenant_a, "probe", "return { kind: 'continue' };", ["login.post-auth"])
    token = api_token("actions:write", "runtime:execute")
    sample = sample_input("login.post-auth")
    del sample["request"]["ip"]
    response = send_json(client, "post", "/api/v1/actions/probe/versions/0.1.0/test", token, {"input": sample})
    assert response.status_code == 200, response.content
