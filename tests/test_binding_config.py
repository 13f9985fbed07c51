"""One validator for a binding's config: the template page's "Check configuration", the flow editor, the
flows API and the test endpoint refuse the same configs with the same words (issue 15, defect 1)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from flows_app.outbound.ssrf import UnsafeURL, check_url_shape
from flows_app.services import BindingSpec, InvalidBindings
from tests.flow_helpers import attach

# URLs a flow save refuses (flows_app.outbound.ssrf), each for its own reason.
REFUSED_URLS = [
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/",
    "https://metadata.google.internal/",
    "https://localhost/",
    "https://127.0.0.1/x",
    "https://10.1.2.3/hook",
    "https://user@example.com/",
]
# Each template that POSTs to a URL from its config: the field, and the rest of a valid config.
OUTBOUND_TEMPLATES = {
    "webhook-emit": ("url", {"secret": "a-signing-secret-123"}),
    "slack-notify": ("webhook_url", {"text": "{user.email} signed in"}),
}
POST_AUTH = "login.post-auth"


def _refusal(url: str) -> str:
    with pytest.raises(UnsafeURL) as unsafe:
        check_url_shape(url)
    return str(unsafe.value)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("template", OUTBOUND_TEMPLATES)
@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_template_page_check_refuses_what_a_flow_save_refuses(
    client: Any, personas: Any, template: str, url: str
) -> None:
    field, rest = OUTBOUND_TEMPLATES[template]
    client.force_login(personas.viewer)
    posted = {f"config-{name}": value for name, value in rest.items()}
    response = client.post(f"/t/acme/actions/{template}/?version=1.0.0", {**posted, f"config-{field}": url})
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "This configuration is valid" not in page
    block = page[page.index(f'id="field-config-{field}"') :]
    block = block[: block.index("</div>")]
    assert _refusal(url) in block, block
    # The flow save refuses it with the same sentence.
    with pytest.raises(InvalidBindings) as invalid:
        attach(personas.tenant_a, POST_AUTH, BindingSpec(template, "1.0.0", {**rest, field: url}))
    assert invalid.value.errors[f"{POST_AUTH}.0.config.{field}"] == [_refusal(url)]


@pytest.mark.parametrize("template", OUTBOUND_TEMPLATES)
def test_the_template_page_still_approves_a_public_url(client: Any, personas: Any, template: str) -> None:
    field, rest = OUTBOUND_TEMPLATES[template]
    client.force_login(personas.viewer)
    posted = {f"config-{name}": value for name, value in rest.items()}
    response = client.post(
        f"/t/acme/actions/{template}/?version=1.0.0", {**posted, f"config-{field}": "https://hooks.example.com/in"}
    )
    assert "This configuration is valid" in response.content.decode()


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_flows_api_refuses_the_url_with_the_same_sentence(
    client: Any, personas: Any, api_token: Any, url: str
) -> None:
    token = api_token("flows:write")
    body = {"bindings": [{"action": "webhook-emit", "version": "1.0.0", "config": {"url": url, "secret": "s" * 20}}]}
    response = client.put(
        f"/api/v1/flows/login/slots/{POST_AUTH}",
        data=json.dumps(body),
        content_type="application/json",
        headers={**_bearer(token), "If-Match": "1"},
    )
    assert response.status_code == 422, response.content
    messages = [d["message"] for d in response.json()["error"]["details"] if d["field"].endswith("config.url")]
    assert messages == [_refusal(url)]


@pytest.mark.parametrize("template", OUTBOUND_TEMPLATES)
@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_test_endpoint_refuses_the_url(client: Any, personas: Any, api_token: Any, template: str, url: str) -> None:
    field, rest = OUTBOUND_TEMPLATES[template]
    token = api_token("runtime:execute")
    body = {"input": {"trigger": POST_AUTH, "user": {"email": "jane@example.com"}}, "config": {**rest, field: url}}
    response = client.post(
        f"/api/v1/actions/{template}/versions/1.0.0/test",
        data=json.dumps(body),
        content_type="application/json",
        headers=_bearer(token),
    )
    assert response.status_code == 422, response.content
    assert any(_refusal(url) in detail["message"] for detail in response.json()["error"]["details"])


def test_the_validator_checks_urls_only_of_the_templates_that_post_to_them() -> None:
    from actions_app.schema_forms import validate_binding_config

    schema = {"type": "object", "properties": {"url": {"type": "string"}}}
    refused = validate_binding_config(schema, {"url": "https://127.0.0.1/x"}, template="webhook-emit")
    assert refused == {"url": [_refusal("https://127.0.0.1/x")]}
    # A custom action's setting named `url` is the action's business (its egress is egress_hosts),
    # and so is a redirect URL of redirect-by-group (the browser goes there, not the platform).
    assert validate_binding_config(schema, {"url": "https://127.0.0.1/x"}, template=None) == {}
    assert validate_binding_config(schema, {"url": "https://127.0.0.1/x"}, template="redirect-by-group") == {}


def test_the_flow_editor_form_refuses_the_url_before_the_save(client: Any, personas: Any) -> None:
    """The editor's own config form runs the same validator, so the field shows the sentence even
    when nothing reaches the service."""
    from actions_app.models import ActionVersion
    from flows_app.editor_state import _config_form

    version = ActionVersion.objects.select_related("action").get(
        action__tenant=personas.tenant_a, action__slug="webhook-emit", version="1.0.0"
    )
    form = _config_form(version.action, version, "b", {}, data={"b-url": "https://10.1.2.3/hook", "b-secret": "s" * 20})
    assert form is not None and not form.is_valid()
    assert re.search(re.escape(_refusal("https://10.1.2.3/hook")), html.unescape(form.render()))
