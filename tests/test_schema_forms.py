"""Config forms generated from JSON Schema: what an operator sees and what gets saved."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.http import QueryDict

from actions_app.schema_forms import (
    ConfigForm,
    UnsupportedSchema,
    build_config_form,
    check_schema_supported,
    mask_secrets,
    secret_paths,
    validate_config,
)
from actions_app.templates_catalog.registry import PLATFORM_TEMPLATES, get_template

# ---------------------------------------------------------------------------------------------
# Reading the rendered HTML the way a browser would.


class _PageReader(HTMLParser):
    """Collects what a browser would submit, and the tags and text inside one element by id."""

    def __init__(self, element_id: str | None = None) -> None:
        super().__init__()
        self.submitted: dict[str, list[str]] = {}
        self.element_id = element_id
        self.element_tags: list[tuple[str, dict[str, str | None]]] = []
        self.element_text: list[str] = []
        self._capture_tag: str | None = None
        self._capture_depth = 0
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attr_list)
        if self._capture_tag is None and self.element_id is not None and attrs.get("id") == self.element_id:
            self._capture_tag, self._capture_depth = tag, 0
        if self._capture_tag is not None:
            self.element_tags.append((tag, attrs))
            if tag == self._capture_tag:
                self._capture_depth += 1
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button"):
            if attrs.get("type") != "checkbox" or "checked" in attrs:
                self.submitted.setdefault(name, []).append(attrs.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.submitted[name] = [""]
        elif tag == "select" and name:
            self._select, self._select_options = name, []
        elif tag == "option" and self._select:
            self._select_options.append((attrs.get("value") or "", "selected" in attrs))

    def handle_endtag(self, tag: str) -> None:
        if self._capture_tag == tag:
            self._capture_depth -= 1
            if self._capture_depth == 0:
                self._capture_tag = None
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select:
            chosen = [value for value, selected in self._select_options if selected]
            self.submitted[self._select] = chosen or [self._select_options[0][0]]
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._capture_tag is not None:
            self.element_text.append(data)
        if self._textarea:
            # Browsers drop one newline straight after <textarea>; html.parser does not.
            text = data.removeprefix("\n") if not self.submitted[self._textarea][0] else data
            self.submitted[self._textarea][0] += text


def submitted_values(html: str) -> dict[str, list[str]]:
    """What submitting the rendered form unchanged would send."""
    reader = _PageReader()
    reader.feed(html)
    return reader.submitted


def element(html: str, element_id: str) -> _PageReader:
    reader = _PageReader(element_id)
    reader.feed(html)
    assert reader.element_tags, f"no element with id {element_id}"
    return reader


def element_text(html: str, element_id: str) -> str:
    return " ".join("".join(element(html, element_id).element_text).split())


def control_attrs(html: str, input_id: str) -> dict[str, str | None]:
    return element(html, input_id).element_tags[0][1]


def as_post(values: dict[str, Any]) -> QueryDict:
    post = QueryDict(mutable=True)
    for name, value in values.items():
        post.setlist(name, value if isinstance(value, list) else [value])
    return post


def schema_of(slug: str) -> dict[str, Any]:
    template = get_template(slug)
    assert template is not None
    return template.latest.config_schema


# ---------------------------------------------------------------------------------------------
# The ten platform templates.

TEMPLATE_VERSIONS = [
    pytest.param(template.slug, version.config_schema, id=f"{template.slug}@{version.version}")
    for template in PLATFORM_TEMPLATES
    for version in template.versions
]

VALID_CONFIGS: dict[str, dict[str, Any]] = {
    "domain-allowlist": {"domains": ["example.com", "eu.example.org"], "include_subdomains": True, "message": "No."},
    "domain-blocklist": {"domains": ["spam.example"], "include_subdomains": False, "message": "Blocked."},
    "rate-limit-by-ip": {
        "limit": 20,
        "window_seconds": 120,
        "message": "Slow down.",
        "allow_cidrs": ["203.0.113.0/24"],
    },
    "rate-limit-by-user": {"max_attempts": 3, "window_seconds": 600, "message": "Wait a bit."},
    "decorate-token": {"claim": "https://example.com/plan", "from": "app_metadata.plan"},
    "webhook-emit": {"url": "https://hooks.example.com/in", "secret": "0123456789abcdef", "include": ["user", "state"]},
    "slack-notify": {"webhook_url": "https://hooks.slack.com/services/T0/B0/XYZ", "text": "{trigger} for {user.email}"},
    "block-by-risk-score": {"threshold": 80, "message": "Blocked."},
    "demand-mfa-by-risk-score": {"threshold": 40},
    "redirect-by-group": {
        "rules": [
            {"group": "admins", "url": "https://admin.example.com"},
            {"group": "staff", "url": "https://staff.example.com/home"},
        ]
    },
}


def valid_config_for(slug: str, schema: dict[str, Any]) -> dict[str, Any]:
    known = schema["properties"]
    return {name: value for name, value in VALID_CONFIGS[slug].items() if name in known}


@pytest.mark.parametrize(("slug", "schema"), TEMPLATE_VERSIONS)
def test_it_supports_every_platform_template(slug: str, schema: dict[str, Any]) -> None:
    assert check_schema_supported(schema) == []
    assert validate_config(schema, valid_config_for(slug, schema)) == {}


@pytest.mark.parametrize(("slug", "schema"), TEMPLATE_VERSIONS)
def test_it_saves_an_existing_config_unchanged_when_submitted_as_shown(slug: str, schema: dict[str, Any]) -> None:
    config = valid_config_for(slug, schema)
    stored = {path: config[path] for path in secret_paths(schema)}
    html = str(build_config_form(schema, initial=config, stored_secrets=stored))

    for secret in stored.values():
        assert secret not in html
    form = build_config_form(schema, data=as_post(submitted_values(html)), stored_secrets=stored)
    assert form.is_valid(), form.field_errors
    assert form.cleaned_config == config


@pytest.mark.parametrize(("slug", "schema"), TEMPLATE_VERSIONS)
def test_it_asks_for_every_required_setting_on_an_empty_submission(slug: str, schema: dict[str, Any]) -> None:
    form = build_config_form(schema, data=as_post({}))

    assert not form.is_valid()
    for name in schema["required"]:
        expected = (
            "Add at least 1 item." if schema["properties"][name]["type"] == "array" else "This field is required."
        )
        assert form.field_errors[name] == [expected]
        assert expected in element_text(str(form), f"field-config-{name}")


# ---------------------------------------------------------------------------------------------
# Errors in plain words, next to the field, and nothing typed lost.


def test_it_shows_a_range_error_next_to_the_field_and_in_the_summary() -> None:
    form = build_config_form(
        schema_of("rate-limit-by-ip"), data=as_post({"config-limit": "10", "config-window_seconds": "0"})
    )

    assert not form.is_valid()
    assert form.field_errors == {"window_seconds": ["Enter a whole number between 1 and 86400."]}
    html = str(form)
    assert "Enter a whole number between 1 and 86400." in element_text(html, "field-config-window_seconds")
    attrs = control_attrs(html, "id_config-window_seconds")
    assert attrs["aria-invalid"] == "true"
    assert attrs["aria-describedby"] == "errors-config-window_seconds help-config-window_seconds"
    summary = element_text(html, "schema-form-config").split("Window (seconds)")[0]
    assert "Fix the following" in summary
    assert 'href="#id_config-window_seconds"' in html


def test_it_redisplays_text_typed_into_a_number_field_with_an_error() -> None:
    data = {"config-limit": "ten", "config-window_seconds": "60", "config-message": "Go away <now>"}
    form = build_config_form(schema_of("rate-limit-by-ip"), data=as_post(data))

    assert not form.is_valid()
    assert form.field_errors == {"limit": ["Enter a whole number that is 1 or more."]}
    html = str(form)
    assert control_attrs(html, "id_config-limit")["value"] == "ten"
    assert control_attrs(html, "id_config-message")["value"] == "Go away <now>"
    assert "Go away &lt;now&gt;" in html


def test_it_keeps_every_line_of_a_list_after_an_error_and_names_the_bad_item() -> None:
    typed = "example.com\nexa mple.com\nexample.com"
    form = build_config_form(schema_of("domain-allowlist"), data=as_post({"config-domains": typed}))

    assert not form.is_valid()
    assert form.field_errors["domains"] == [
        "“exa mple.com”: Enter a valid hostname such as example.com.",
        "Items must be unique.",
    ]
    assert submitted_values(str(form))["config-domains"] == [typed]


def test_it_explains_a_non_https_url_and_a_reserved_claim() -> None:
    webhook = build_config_form(
        schema_of("webhook-emit"), data=as_post({"config-url": "http://example.com", "config-secret": "x" * 20})
    )
    token = build_config_form(schema_of("decorate-token"), data=as_post({"config-claim": "sub", "config-value": "x"}))

    assert not webhook.is_valid()
    assert webhook.field_errors == {"url": ["Must be an https URL."]}
    assert not token.is_valid()
    namespaced = "Use a namespaced name: an http(s) URL with a name after the host, such as https://example.com/plan."
    assert token.field_errors == {"claim": [namespaced, "“sub” is reserved and cannot be used."]}
    plain = build_config_form(schema_of("decorate-token"), data=as_post({"config-claim": "plan", "config-value": "x"}))
    assert not plain.is_valid()
    assert plain.field_errors == {"claim": [namespaced]}
    assert 'value="plan"' in str(plain)  # what was typed stays in the field


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"config-value": "gold", "config-from": "app_metadata.plan"},
            "Give either “Constant value” or “Source path in the user”, not both.",
        ),
        ({}, "Give either “Constant value” or “Source path in the user”."),
    ],
)
def test_it_explains_the_choice_between_value_and_source_at_the_top(values: dict[str, str], message: str) -> None:
    form = build_config_form(
        schema_of("decorate-token"), data=as_post({"config-claim": "https://x.example/plan", **values})
    )

    assert not form.is_valid()
    assert form.form_errors == [message]
    assert form.field_errors == {}
    assert message in element_text(str(form), "schema-form-config")


def test_it_leaves_empty_optional_settings_out_of_the_config() -> None:
    data = {"config-claim": "https://x.example/plan", "config-value": "  ", "config-from": "app_metadata.plan"}
    form = build_config_form(schema_of("decorate-token"), data=as_post(data))

    assert form.is_valid(), form.field_errors
    assert form.cleaned_config == {"claim": "https://x.example/plan", "from": "app_metadata.plan"}


def test_it_saves_unchecked_boxes_as_false_and_no_ticked_choices_as_an_empty_list() -> None:
    allowlist = build_config_form(schema_of("domain-allowlist"), data=as_post({"config-domains": "example.com"}))
    webhook = build_config_form(
        schema_of("webhook-emit"), data=as_post({"config-url": "https://h.example", "config-secret": "s" * 16})
    )

    assert allowlist.is_valid()
    assert allowlist.cleaned_config == {
        "domains": ["example.com"],
        "include_subdomains": False,
    }
    assert webhook.is_valid()
    assert webhook.cleaned_config["include"] == []


def test_the_api_and_the_form_give_the_same_message() -> None:
    schema = schema_of("block-by-risk-score")
    form = build_config_form(schema, data=as_post({"config-threshold": "101"}))

    assert not form.is_valid()
    assert (
        validate_config(schema, {"threshold": 101})
        == form.field_errors
        == {"threshold": ["Enter a whole number between 0 and 100."]}
    )
    assert validate_config(schema, {"threshold": 50, "colour": "red"}) == {"": ["“colour” is not a known setting."]}


def test_enter_in_a_text_box_does_not_press_a_remove_row_button() -> None:
    html = str(build_config_form(schema_of("redirect-by-group")))

    first_button = next(attrs for tag, attrs in element(html, "schema-form-config").element_tags if tag == "button")
    assert "name" not in first_button
    assert "hidden" in first_button


# ---------------------------------------------------------------------------------------------
# Secrets.


def test_it_never_shows_a_secret_even_after_a_failed_submission() -> None:
    typed_secret = "typed-secret-value-123"
    form = build_config_form(
        schema_of("webhook-emit"),
        data=as_post({"config-url": "not a url", "config-secret": typed_secret}),
        stored_secrets={"secret": "stored-secret-value-456"},
    )

    assert not form.is_valid()
    html = str(form)
    assert typed_secret not in html
    assert "stored-secret-value-456" not in html
    attrs = control_attrs(html, "id_config-secret")
    assert attrs["type"] == "password"
    assert "value" not in attrs


def test_it_never_prefills_a_secret_from_the_initial_config() -> None:
    schema = schema_of("slack-notify")
    hook = "https://hooks.slack.com/services/T0/B0/SECRET"
    html = str(
        build_config_form(schema, initial={"webhook_url": hook, "text": "hi"}, stored_secrets={"webhook_url": hook})
    )

    assert "SECRET" not in html
    assert "Stored — leave blank to keep." in element_text(html, "field-config-webhook_url")


def test_a_blank_secret_keeps_the_stored_one_and_a_typed_one_replaces_it() -> None:
    schema = schema_of("webhook-emit")
    stored = {"secret": "stored-secret-0123456"}
    kept = build_config_form(
        schema, data=as_post({"config-url": "https://h.example", "config-secret": ""}), stored_secrets=stored
    )
    replaced = build_config_form(
        schema,
        data=as_post({"config-url": "https://h.example", "config-secret": "new-secret-0123456"}),
        stored_secrets=stored,
    )
    missing = build_config_form(schema, data=as_post({"config-url": "https://h.example", "config-secret": ""}))

    assert kept.is_valid()
    assert kept.cleaned_config["secret"] == "stored-secret-0123456"
    assert replaced.is_valid()
    assert replaced.cleaned_config["secret"] == "new-secret-0123456"
    assert not missing.is_valid()
    assert missing.field_errors == {"secret": ["This field is required."]}
    assert "Stored — leave blank to keep." not in str(missing)


def test_it_finds_and_masks_secrets() -> None:
    schema = schema_of("webhook-emit")
    config = {"url": "https://h.example", "secret": "0123456789abcdef", "include": ["user"]}

    assert secret_paths(schema) == ["secret"]
    assert secret_paths(schema_of("rate-limit-by-ip")) == []
    assert mask_secrets(config, schema) == {"url": "https://h.example", "secret": "••••••", "include": ["user"]}
    assert config["secret"] == "0123456789abcdef"


def test_it_masks_secrets_nested_in_objects_and_lists() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "auth": {"type": "object", "properties": {"token": {"type": "string", "writeOnly": True}}},
            "headers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "string", "writeOnly": True}},
                },
            },
        },
    }
    schema["properties"]["keys"] = {"type": "array", "items": {"type": "string", "writeOnly": True}}
    config = {"auth": {"token": "t0k3n"}, "headers": [{"name": "X-Key", "value": "v4lu3"}], "keys": ["k1", "k2"]}

    assert secret_paths(schema) == ["auth.token", "headers.*.value", "keys.*"]
    assert mask_secrets(config, schema) == {
        "auth": {"token": "••••••"},
        "headers": [{"name": "X-Key", "value": "••••••"}],
        "keys": ["••••••", "••••••"],
    }


# ---------------------------------------------------------------------------------------------
# Defaults and prefilling.


def test_defaults_prefill_a_new_config() -> None:
    html = str(build_config_form(schema_of("rate-limit-by-user")))
    webhook_html = str(build_config_form(schema_of("webhook-emit")))

    assert control_attrs(html, "id_config-max_attempts")["value"] == "5"
    assert control_attrs(html, "id_config-window_seconds")["value"] == "300"
    assert control_attrs(html, "id_config-message")["value"] == "Too many attempts on this account. Try again later."
    assert submitted_values(webhook_html)["config-include"] == ["user", "request"]


def test_an_existing_config_is_shown_as_stored_without_defaults_filling_gaps() -> None:
    html = str(build_config_form(schema_of("rate-limit-by-user"), initial={"max_attempts": 9, "window_seconds": 30}))

    assert control_attrs(html, "id_config-max_attempts")["value"] == "9"
    assert control_attrs(html, "id_config-message")["value"] == ""


def test_labels_help_and_required_markers_come_from_the_schema() -> None:
    html = str(build_config_form(schema_of("rate-limit-by-ip")))

    assert element_text(html, "field-config-limit").startswith("Requests allowed per window (required)")
    assert "Requests from one IP address beyond this number" in element_text(html, "help-config-limit")
    assert "(required)" not in element_text(html, "field-config-message")
    assert control_attrs(html, "id_config-limit")["aria-describedby"] == "help-config-limit"


def test_an_optional_choice_offers_an_empty_option_and_a_chosen_one_round_trips() -> None:
    schema = {
        "type": "object",
        "properties": {
            "region": {"type": "string", "enum": ["eu", "us"]},
            "tier": {"type": "integer", "enum": [1, 2, 3], "default": 2},
        },
        "required": ["tier"],
    }
    html = str(build_config_form(schema))
    form = build_config_form(schema, data=as_post({"config-region": "", "config-tier": "3"}))

    region_options = [
        attrs["value"] for tag, attrs in element(html, "id_config-region").element_tags if tag == "option"
    ]
    tier_options = [attrs for tag, attrs in element(html, "id_config-tier").element_tags if tag == "option"]
    assert region_options == ["", "eu", "us"]
    assert [attrs["value"] for attrs in tier_options] == ["1", "2", "3"]
    assert "selected" in tier_options[1]
    assert form.is_valid()
    assert form.cleaned_config == {"tier": 3}


NESTED_SCHEMA = {
    "type": "object",
    "properties": {
        "proxy": {
            "type": "object",
            "title": "Outbound proxy",
            "properties": {
                "host": {"type": "string", "format": "hostname"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            },
            "required": ["host", "port"],
        }
    },
}


def test_a_nested_object_is_a_fieldset_left_out_when_empty_and_checked_when_filled() -> None:
    html = str(build_config_form(NESTED_SCHEMA))
    empty = build_config_form(NESTED_SCHEMA, data=as_post({"config-proxy.host": "", "config-proxy.port": ""}))
    half = build_config_form(
        NESTED_SCHEMA, data=as_post({"config-proxy.host": "proxy.example", "config-proxy.port": ""})
    )
    full = build_config_form(
        NESTED_SCHEMA, data=as_post({"config-proxy.host": "proxy.example", "config-proxy.port": "3128"})
    )

    assert element(html, "field-config-proxy").element_tags[0][0] == "fieldset"
    assert element_text(html, "field-config-proxy").startswith("Outbound proxy")
    assert empty.is_valid()
    assert empty.cleaned_config == {}
    assert not half.is_valid()
    assert half.field_errors == {"proxy.port": ["This field is required."]}
    assert full.is_valid()
    assert full.cleaned_config == {"proxy": {"host": "proxy.example", "port": 3128}}


# ---------------------------------------------------------------------------------------------
# Rows of a list, added and removed without JavaScript.


def test_add_row_shows_a_new_row_and_keeps_what_was_typed() -> None:
    data = {
        "config-rules-row-count": "1",
        "config-rules.0.group": "admins",
        "config-rules.0.url": "http://typed",
        "config-rules-add-row": "1",
    }
    form = build_config_form(schema_of("redirect-by-group"), data=as_post(data))

    assert form.row_change_requested
    assert not form.is_valid()
    html = str(form)
    assert 'class="form-errors"' not in html
    assert "errorlist" not in html
    values = submitted_values(html)
    assert values["config-rules-row-count"] == ["2"]
    assert values["config-rules.0.url"] == ["http://typed"]
    assert values["config-rules.1.group"] == [""]
    assert "autofocus" in control_attrs(html, "id_config-rules.1.group")


def test_remove_row_drops_that_row_and_renumbers_the_rest() -> None:
    data = {
        "config-rules-row-count": "3",
        "config-rules.0.group": "a",
        "config-rules.0.url": "https://a.example",
        "config-rules.1.group": "b",
        "config-rules.1.url": "https://b.example",
        "config-rules.2.group": "c",
        "config-rules.2.url": "https://c.example",
        "config-rules-remove-row-1": "1",
    }
    form = build_config_form(schema_of("redirect-by-group"), data=as_post(data))

    assert form.row_change_requested
    assert not form.is_valid()
    resubmitted = build_config_form(schema_of("redirect-by-group"), data=as_post(submitted_values(str(form))))
    assert not resubmitted.row_change_requested
    assert resubmitted.is_valid(), resubmitted.field_errors
    assert resubmitted.cleaned_config == {
        "rules": [{"group": "a", "url": "https://a.example"}, {"group": "c", "url": "https://c.example"}]
    }


def test_rows_report_errors_on_the_row_field_and_the_list() -> None:
    schema = schema_of("redirect-by-group")
    bad_row = build_config_form(
        schema,
        data=as_post({"config-rules-row-count": "1", "config-rules.0.group": "", "config-rules.0.url": "ftp://x"}),
    )
    no_rows = build_config_form(schema, data=as_post({"config-rules-row-count": "0"}))

    assert not bad_row.is_valid()
    assert bad_row.field_errors == {
        "rules.0.group": ["This field is required."],
        "rules.0.url": ["Must be an https URL."],
    }
    assert "Rules › Row 1 › Redirect URL: Must be an https URL." in element_text(str(bad_row), "schema-form-config")
    assert not no_rows.is_valid()
    assert no_rows.field_errors == {"rules": ["Add at least 1 item."]}
    assert "No rows yet" in str(no_rows)


def test_add_row_stops_at_max_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pairs": {
                "type": "array",
                "maxItems": 1,
                "items": {"type": "object", "properties": {"key": {"type": "string", "default": "k"}}},
            }
        },
    }
    form = build_config_form(schema, data=as_post({"config-pairs-row-count": "1", "config-pairs-add-row": "1"}))
    first = build_config_form(schema, data=as_post({"config-pairs-row-count": "0", "config-pairs-add-row": "1"}))

    assert submitted_values(str(form))["config-pairs-row-count"] == ["1"]
    assert "config-pairs-add-row" not in str(form)
    assert submitted_values(str(first))["config-pairs.0.key"] == ["k"]


# ---------------------------------------------------------------------------------------------
# Schemas the forms cannot handle.


@pytest.mark.parametrize(
    ("property_schema", "path", "words"),
    [
        ({"$ref": "#/$defs/x"}, "/properties/x", "$ref at /properties/x is not supported"),
        (
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "/properties/x",
            "anyOf at /properties/x is not supported",
        ),
        ({"type": "string", "allOf": [{"minLength": 1}]}, "/properties/x", "allOf at /properties/x is not supported"),
        ({"type": ["string", "null"]}, "/properties/x", "A list of types at /properties/x"),
        (
            {"type": "object", "properties": {}, "patternProperties": {"^a": {"type": "string"}}},
            "/properties/x",
            "patternProperties",
        ),
        (
            {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "/properties/x",
            "additionalProperties as a schema",
        ),
        (
            {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
            "/properties/x/items",
            "Arrays of arrays",
        ),
        ({"type": "array", "prefixItems": [{"type": "string"}]}, "/properties/x", "prefixItems at /properties/x"),
        ({"type": "string", "if": {"minLength": 2}, "then": {"pattern": "a"}}, "/properties/x", "if at /properties/x"),
        ({"type": "string", "format": "date"}, "/properties/x", "Format date at /properties/x"),
        ({"type": "string", "not": {"pattern": "a"}}, "/properties/x", "not at /properties/x"),
        ({"type": "object"}, "/properties/x", "needs properties"),
        (
            {"type": "array", "items": {"type": "object", "properties": {"t": {"type": "string", "writeOnly": True}}}},
            "/properties/x/items/properties/t",
            "writeOnly at /properties/x/items/properties/t is not supported inside a list",
        ),
    ],
)
def test_it_reports_unsupported_constructs_with_their_path(
    property_schema: dict[str, Any], path: str, words: str
) -> None:
    schema = {"type": "object", "properties": {"x": property_schema}}

    problems = check_schema_supported(schema)

    assert {problem.path for problem in problems} == {path}
    assert any(words in problem.message for problem in problems)
    with pytest.raises(UnsupportedSchema) as raised:
        build_config_form(schema)
    assert raised.value.problems == problems


def test_it_reports_a_top_level_one_of_unless_its_branches_only_list_required_settings() -> None:
    properties = {"a": {"type": "string"}, "b": {"type": "string"}}
    required_only = {"type": "object", "properties": properties, "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    shaped = {
        "type": "object",
        "properties": properties,
        "oneOf": [{"properties": {"a": {"minLength": 2}}}, {"required": ["b"]}],
    }

    assert check_schema_supported(required_only) == []
    assert [problem.path for problem in check_schema_supported(shaped)] == ["/oneOf"]


def test_it_checks_the_schema_against_the_meta_schema_first() -> None:
    problems = check_schema_supported({"type": "strng"})

    assert len(problems) == 1
    assert problems[0].path == "/type"
    assert "strng" in problems[0].message
    assert "not valid JSON Schema" in problems[0].message


def test_it_refuses_a_top_level_that_is_not_an_object_and_a_bad_default() -> None:
    assert [problem.path for problem in check_schema_supported({"type": "string"})] == ["/"]
    problems = check_schema_supported({"type": "object", "properties": {"n": {"type": "integer", "default": "ten"}}})
    assert [(problem.path, "default" in problem.message) for problem in problems] == [("/properties/n", True)]


# ---------------------------------------------------------------------------------------------
# Formats: checked by our own code, never skipped for want of an optional package.


def _format_errors(format_name: str, value: str) -> list[str]:
    schema = {"type": "object", "properties": {"v": {"type": "string", "format": format_name}}}
    return validate_config(schema, {"v": value}).get("v", [])


@pytest.mark.parametrize(
    ("format_name", "value"),
    [
        ("cidr", "203.0.113.0/24"),
        ("cidr", "2001:db8::/32"),
        ("cidr", "10.0.0.1/32"),
        ("hostname", "example.com"),
        ("hostname", "eu.mail-1.example.co.uk"),
        ("hostname", "localhost"),
        ("uri", "https://example.com/path?q=1"),
        ("uri", "http://127.0.0.1:8080"),
        ("email", "first.last+tag@example.com"),
        ("ipv4", "192.0.2.10"),
        ("ipv6", "2001:db8::10"),
    ],
)
def test_it_accepts_well_formed_values(format_name: str, value: str) -> None:
    assert _format_errors(format_name, value) == []


@pytest.mark.parametrize(
    ("format_name", "value", "message"),
    [
        ("cidr", "203.0.113.7/24", "Did you mean 203.0.113.0/24?"),
        ("cidr", "203.0.113.0", "CIDR notation"),
        ("cidr", "203.0.113.0/33", "CIDR notation"),
        ("cidr", "office", "CIDR notation"),
        ("hostname", "exa mple.com", "Enter a valid hostname such as example.com."),
        ("hostname", "-example.com", "Enter a valid hostname such as example.com."),
        ("hostname", "under_score.example", "Enter a valid hostname such as example.com."),
        ("hostname", "192.0.2.1", "Enter a valid hostname such as example.com."),
        ("uri", "example.com/path", "Enter a full URL"),
        ("uri", "https://", "Enter a full URL"),
        ("uri", "https://exa mple.com", "Enter a full URL"),
        ("uri", "https://example.com:99999", "Enter a full URL"),
        ("email", "no-at-sign.example.com", "Enter a valid email address"),
        ("email", "name@localhost", "Enter a valid email address"),
        ("email", "two@@example.com", "Enter a valid email address"),
        ("ipv4", "192.0.2.256", "IPv4"),
        ("ipv6", "2001:db8::g", "IPv6"),
    ],
)
def test_it_rejects_malformed_values(format_name: str, value: str, message: str) -> None:
    errors = _format_errors(format_name, value)

    assert len(errors) == 1
    assert message in errors[0]


def test_a_cidr_list_in_the_form_names_the_bad_network() -> None:
    data = {"config-limit": "5", "config-window_seconds": "60", "config-allow_cidrs": "203.0.113.0/24\n198.51.100.9/24"}
    form = build_config_form(schema_of("rate-limit-by-ip"), data=as_post(data))

    assert not form.is_valid()
    assert form.field_errors["allow_cidrs"] == [
        "“198.51.100.9/24”: Enter a network in CIDR notation such as 203.0.113.0/24 or 2001:db8::/32. "
        "Did you mean 198.51.100.0/24?"
    ]


def test_a_config_form_renders_inside_a_page_template() -> None:
    from django.template import Context, Template

    form: ConfigForm = build_config_form(schema_of("demand-mfa-by-risk-score"))
    page = Template("<form method='post'>{{ config_form }}</form>").render(Context({"config_form": form}))

    assert control_attrs(page, "id_config-threshold")["value"] == "50"
    assert "&lt;div" not in page


@pytest.mark.parametrize(
    ("pattern", "value", "valid"),
    [
        ("^[a-z]+$", "plan", True),
        ("^[a-z]+$", "plan\n", False),  # Python's `$` would allow the newline; ECMA-262's does not
        ("^(https://x/plan$)", "https://x/plan\n", False),
        ("^a$|^b$", "b\n", False),
        ("^a$|^b$", "b", True),
        (r"^\$[$]$", "$$", True),  # escaped and in a class, `$` is a dollar sign
    ],
)
def test_patterns_end_where_json_schema_says(pattern: str, value: str, valid: bool) -> None:
    from actions_app.schema_forms.validation import validate_config

    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}}
    assert (validate_config(schema, {"v": value}) == {}) is valid


def test_text_the_database_cannot_store_is_an_error_next_to_its_field() -> None:
    for typed, problem in (("a\x00b", "NUL"), ("a\ud800b", "surrogate")):
        form = build_config_form(
            schema_of("block-by-risk-score"), data=as_post({"config-threshold": "50", "config-message": typed})
        )
        assert not form.is_valid()
        assert list(form.field_errors) == ["message"] and problem in form.field_errors["message"][0]
        # A list of one item per line checks each line.
        domains = build_config_form(
            schema_of("domain-allowlist"), data=as_post({"config-domains": f"example.com\n{typed}"})
        )
        assert not domains.is_valid() and problem in domains.field_errors["domains"][0]
