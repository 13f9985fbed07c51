"""A version's declared outbound hosts (contract §11 `egress_hosts`): what may be declared, how
it is kept, and that changing it is a new version shown in the diff."""

from __future__ import annotations

from typing import Any

import pytest

from actions_app.egress import EgressHostsRefused, normalize_egress_hosts
from actions_app.models import Action
from actions_app.versioning import NothingChanged, VersionDraft, save_action_version
from tests.factories import GOOD, SCHEMA, TRIGGERS, acting_as, bearer, create, editor_post, new_action, post, web


def test_hosts_are_kept_as_written_the_usual_way() -> None:
    given = [
        " API.Example.com ",
        "api.example.com:443",
        "*.crm.example.com",
        "hooks.example.com:8443",
        "x.example.com.",
    ]
    given += ["127.0.0.1:8123", "localhost:9000", "[::1]:8443", ""]
    assert normalize_egress_hosts(given) == [
        "api.example.com",
        "*.crm.example.com",
        "hooks.example.com:8443",
        "x.example.com",
        "127.0.0.1:8123",
        "localhost:9000",
        "[::1]:8443",
    ]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("127.1", "write the address as 127.0.0.1"),
        ("0x7f.0.0.1", "write the address as 127.0.0.1"),
        ("2130706433", "write the address as 127.0.0.1"),
        ("0177.0.0.1", "write the address as 127.0.0.1"),
        ("::1", "in brackets"),
        ("[0:0::1]", "write the address as [::1]"),
        ("*.com", "not a host name"),
        ("a.*.example.com", "not a host name"),
        ("https://api.example.com", "not a host name"),
        ("api.example.com/path", "not a host name"),
        ("api.example.com:0", "port must be from 1 to 65535"),
        ("api.example.com:70000", "port must be from 1 to 65535"),
        ("-api.example.com", "not a host name"),
    ],
)
def test_other_notations_and_non_hosts_are_refused_saying_why(entry: str, words: str) -> None:
    with pytest.raises(EgressHostsRefused) as refused:
        normalize_egress_hosts(["ok.example.com", entry])
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith(entry) and words in refused.value.problems[0]


def test_at_most_twenty_hosts() -> None:
    with pytest.raises(EgressHostsRefused, match="at most 20"):
        normalize_egress_hosts([f"h{i}.example.com" for i in range(21)])


def test_changing_only_the_hosts_is_a_new_version(personas: Any) -> None:
    version = create(personas)
    action = version.action
    acting = acting_as(personas.editor)
    saved = save_action_version(action, VersionDraft(GOOD, SCHEMA, TRIGGERS, ["API.example.com"]), acting=acting)
    assert (saved.version.version, saved.version.egress_hosts) == ("0.1.1", ["api.example.com"])
    with pytest.raises(NothingChanged):
        save_action_version(action, VersionDraft(GOOD, SCHEMA, TRIGGERS, ["api.example.com:443"]), acting=acting)


def test_the_editor_saves_hosts_and_refuses_a_bad_one_by_its_field(personas: Any) -> None:
    create(personas)
    client = web(personas.editor)
    url = "/t/acme/actions/my-action/save/"
    refused = client.post(url, editor_post(source=GOOD + "// v2", base_version="0.1.0", egress_hosts="127.1"))
    html = refused.content.decode()
    assert refused.status_code == 422
    assert "write the address as 127.0.0.1" in html and 'href="#id_egress_hosts"' in html
    assert "// v2" in html  # what was typed is kept
    assert Action.objects.get(slug="my-action").versions.count() == 1
    saved = client.post(
        url, editor_post(source=GOOD, base_version="0.1.0", egress_hosts="api.example.com\n*.crm.example.com")
    )
    assert saved.status_code == 302
    latest = Action.objects.get(slug="my-action").latest_version()
    assert latest is not None and latest.egress_hosts == ["api.example.com", "*.crm.example.com"]
    page = client.get("/t/acme/actions/my-action/").content.decode()
    assert "api.example.com\n*.crm.example.com</textarea>" in page
    diff = client.get("/t/acme/actions/my-action/diff/?left=0.1.0&right=0.1.1").content.decode()
    assert "+ <code>api.example.com</code> (added)" in diff and "+ <code>*.crm.example.com</code> (added)" in diff


def test_the_api_declares_hosts_and_names_the_field_it_refuses(client: Any, personas: Any, api_token: Any) -> None:
    token = api_token("actions:read", "actions:write")
    refused = new_action(client, token, egress_hosts=["api.example.com", "10.1"])
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == [
        {"field": "egress_hosts", "message": "10.1: write the address as 10.0.0.1"}
    ]
    created = new_action(client, token, egress_hosts=["API.example.com:443"])
    assert created.status_code == 201, created.json()
    # A new version keeps the latest's hosts unless it gives its own.
    assert post(client, "/api/v1/actions/risk-gate/versions", token, {"source": GOOD + "// 2"}).status_code == 201
    detail = client.get("/api/v1/actions/risk-gate/versions/0.1.1", headers=bearer(token)).json()
    assert detail["egress_hosts"] == ["api.example.com"]
