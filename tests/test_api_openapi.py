"""The OpenAPI document at /api/v1/openapi.json describes every operation of contract §9."""

from __future__ import annotations

from typing import Any

import pytest

# Contract §9, with the scope each operation needs.
CONTRACT_OPERATIONS = [
    ("get", "/api/v1/actions", "actions:read"),
    ("post", "/api/v1/actions", "actions:write"),
    ("get", "/api/v1/actions/{slug}", "actions:read"),
    ("post", "/api/v1/actions/{slug}/versions", "actions:write"),
    ("get", "/api/v1/actions/{slug}/versions/{version}", "actions:read"),
    ("post", "/api/v1/actions/{slug}/versions/{version}/publish", "actions:publish"),
    ("post", "/api/v1/actions/{slug}/versions/{version}/test", "runtime:execute"),
    ("get", "/api/v1/flows", "flows:read"),
    ("get", "/api/v1/flows/{slug}", "flows:read"),
    ("put", "/api/v1/flows/{slug}/slots/{trigger}", "flows:write"),
    ("post", "/api/v1/flows/{slug}/run", "runtime:execute"),
    # §14
    ("post", "/api/v1/flows/{slug}/revisions/{number}/restore", "flows:write"),
    ("post", "/api/v1/flows/{slug}/promote", "flows:write"),
    ("get", "/api/v1/audit", "audit:read"),
]
ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture
def document(client: Any, db: None) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    assert path in document["paths"], f"{path} is not documented"
    assert method in document["paths"][path], f"{method.upper()} {path} is not documented"
    return document["paths"][path][method]


def component(document: dict[str, Any], ref: str) -> dict[str, Any]:
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]


@pytest.mark.parametrize(("method", "path", "scope"), CONTRACT_OPERATIONS)
def test_every_contract_operation_is_documented(document: dict[str, Any], method: str, path: str, scope: str) -> None:
    found = operation(document, method, path)
    assert found["summary"] and found["description"] and found["tags"]
    assert found["security"] == [{"TenantTokenAuth": [scope]}]
    assert scope in found["description"]
    answers = found["responses"]
    successes = [status for status in answers if int(status) < 300]
    assert successes, "no success answer"
    for status in successes:
        assert answers[status]["content"]["application/json"]["schema"]["$ref"]
        assert set(answers[status]["headers"]) == {"X-RateLimit-Limit", "X-RateLimit-Remaining"}
    assert {"401", "403", "422", "429"} <= set(answers)
    for status, answer in answers.items():
        if int(status) >= 400:
            assert answer["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, status
            assert answer["description"] not in ("", "Unknown Status Code"), status
    assert "Retry-After" in answers["429"]["headers"]
    if "requestBody" in found:
        body = component(document, found["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        assert body["examples"], f"{method} {path} has no request example"


def test_operations_name_the_errors_the_contract_gives_them(document: dict[str, Any]) -> None:
    for method, path in [
        ("put", "/api/v1/flows/{slug}/slots/{trigger}"),
        ("post", "/api/v1/flows/{slug}/revisions/{number}/restore"),
        ("post", "/api/v1/flows/{slug}/promote"),
    ]:
        revision_write = operation(document, method, path)
        assert {"404", "412", "422", "428"} <= set(revision_write["responses"]), path
        assert any(p["in"] == "header" and p["name"] == "If-Match" for p in revision_write["parameters"]), path
    for path in ["/api/v1/actions", "/api/v1/actions/{slug}/versions"]:
        post = operation(document, "post", path)
        assert "422" in post["responses"]
        assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in post["parameters"]), path
    assert "404" in operation(document, "get", "/api/v1/actions/{slug}/versions/{version}")["responses"]


@pytest.mark.parametrize("path", ["/api/v1/actions", "/api/v1/flows", "/api/v1/audit"])
def test_the_lists_page_by_cursor(document: dict[str, Any], path: str) -> None:
    listing = operation(document, "get", path)
    assert {"limit", "cursor"} <= {p["name"] for p in listing["parameters"] if p["in"] == "query"}
    assert "400" in listing["responses"]
    page = component(document, listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    assert set(page["properties"]) == {"items", "next"}


def test_the_error_schema_is_the_contracts_shape(document: dict[str, Any]) -> None:
    error = component(document, ERROR_REF)
    info = component(document, error["properties"]["error"]["$ref"])
    assert set(info["properties"]) == {"code", "message", "details"}
    assert set(info["required"]) == {"code", "message", "details"}
    assert error["examples"][0]["error"]["code"] == "missing_scope"


def test_the_bearer_scheme_and_parameter_examples_are_valid_openapi(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["TenantTokenAuth"] == {"type": "http", "scheme": "bearer"}
    for path, operations in document["paths"].items():
        for method, found in operations.items():
            for parameter in found.get("parameters", []):
                # OpenAPI's parameter `examples` is a map; a list there makes the document invalid.
                assert not isinstance(parameter.get("examples"), list), (method, path, parameter["name"])


@pytest.mark.parametrize(("method", "path", "scope"), CONTRACT_OPERATIONS)
def test_every_operation_refuses_a_token_without_its_scope(
    client: Any, personas: Any, api_token: Any, method: str, path: str, scope: str
) -> None:
    from tenants.models import API_SCOPES

    slug = "login" if "/flows/" in path else "risk-gate"
    url = path.format(slug=slug, version="0.1.0", trigger="login.post-auth", number=1)
    token = api_token(*[s for s in API_SCOPES if s != scope])
    headers = {"Authorization": f"Bearer {token}"}
    if method == "get":
        response = client.get(url, headers=headers)
    else:
        # An empty body is invalid everywhere: the scope is checked before the body is read.
        response = getattr(client, method)(url, data="{}", content_type="application/json", headers=headers)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "missing_scope"
    assert scope in error["message"] and error["details"] == {"required_scope": scope}


def test_a_wrong_method_is_a_405_in_the_error_shape(client: Any, api_token: Any) -> None:
    token = api_token("actions:read")
    answer = client.delete("/api/v1/actions", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 405
    error = answer.json()["error"]
    assert error["code"] == "method_not_allowed" and set(error["details"]["allowed_methods"]) == {"GET", "POST"}
    assert set(answer["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
