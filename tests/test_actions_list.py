from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions_app.models import Action
from flows_app.models import Binding, Flow, FlowRevision
from tests.factories import add_custom_action, bulk_custom_actions

URL = "/t/acme/actions/"


def names_in(response: Any) -> list[str]:
    html = response.content.decode()
    return re.findall(r'<code class="slug">([a-z0-9-]+)</code>', html)


def test_it_lists_the_ten_templates_with_their_columns(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Name", "Kind", "Compatible triggers", "Attached", "Latest version"):
        assert header in html
    assert len(names_in(response)) == 10
    assert "rate-limit-by-ip" in names_in(response)
    # latest version of rate-limit-by-ip is 1.1.0, and its triggers are listed
    row = html[html.index("rate-limit-by-ip") :]
    row = row[: row.index("</tr>")]
    assert "1.1.0" in row and "password-reset.requested" in row


def test_it_searches_by_name_or_slug(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    assert names_in(client.get(URL, {"q": "risk"})) == ["block-by-risk-score", "demand-mfa-by-risk-score"]
    assert names_in(client.get(URL, {"q": "Slack"})) == ["slack-notify"]
    response = client.get(URL, {"q": "nothing-like-this"})
    assert names_in(response) == []
    assert "No actions match these filters" in response.content.decode()


def test_it_filters_by_kind_and_trigger(client: Any, personas: Any) -> None:
    add_custom_action(personas.tenant_a, "my-custom")
    client.force_login(personas.viewer)
    assert names_in(client.get(URL, {"kind": "custom"})) == ["my-custom"]
    assert len(names_in(client.get(URL, {"kind": "template"}))) == 10
    assert names_in(client.get(URL, {"trigger": "login.pre-token"})) == [
        "decorate-token",
        "slack-notify",
        "webhook-emit",
    ]
    # login.post-auth: the custom action and five templates
    post_auth = names_in(client.get(URL, {"trigger": "login.post-auth"}))
    assert "my-custom" in post_auth and "redirect-by-group" in post_auth and "decorate-token" not in post_auth
    assert names_in(client.get(URL, {"trigger": "login.post-auth", "kind": "custom"})) == ["my-custom"]


def test_it_ignores_unknown_filter_values_rather_than_failing(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(URL, {"kind": "bogus", "trigger": "nope", "sort": "drop table", "page": "999"})
    assert response.status_code == 200
    assert len(names_in(response)) == 10


def test_it_sorts_and_keeps_the_state_in_links(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    ascending = names_in(client.get(URL, {"sort": "name"}))
    descending = names_in(client.get(URL, {"sort": "-name"}))
    assert descending == list(reversed(ascending))
    html = client.get(URL, {"q": "rate", "sort": "-name"}).content.decode()
    # the Name header flips to ascending and keeps the search
    assert 'href="?q=rate&amp;sort=name"' in html


def test_attached_counts_bindings_in_current_revisions_only(client: Any, personas: Any) -> None:
    tenant = personas.tenant_a
    login = Flow.objects.get(tenant=tenant, slug="login")
    action = Action.objects.get(tenant=tenant, slug="block-by-risk-score")
    version = action.versions.get()
    old = login.current_revision
    assert old is not None
    Binding.objects.create(revision=old, trigger="login.post-auth", position=0, action=action, pinned_version=version)
    current = FlowRevision.objects.create(flow=login, number=2)
    for position in range(2):
        Binding.objects.create(
            revision=current, trigger="login.post-auth", position=position, action=action, pinned_version=version
        )
    login.current_revision = current
    login.save()
    client.force_login(personas.viewer)
    html = client.get(URL, {"q": "block-by-risk"}).content.decode()
    # The count links to where the action is attached.
    assert '<a href="/t/acme/actions/block-by-risk-score/#where-attached"' in html
    assert re.search(r'<td class="num"><a [^>]*>2</a></td>', html)
    assert names_in(client.get(URL, {"sort": "-attached"}))[0] == "block-by-risk-score"


def test_htmx_requests_get_only_the_results_region(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(URL, {"q": "domain"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html
    assert names_in(response) == ["domain-allowlist", "domain-blocklist"]


def _queries_for(client: Any, params: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL, params)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "bulk action 01"},
        {"kind": "custom", "trigger": "login.post-auth"},
        {"sort": "-attached", "page": "40"},
    ],
)
def test_the_page_runs_a_constant_number_of_queries(client: Any, personas: Any, params: dict[str, str]) -> None:
    client.force_login(personas.viewer)
    bulk_custom_actions(personas.tenant_a, 50)
    small = _queries_for(client, params)
    bulk_custom_actions(personas.tenant_a, 4950, prefix="more")
    assert Action.objects.filter(tenant=personas.tenant_a).count() == 5010
    large = _queries_for(client, params)
    assert large == small
    assert large <= 12


def test_the_list_of_5000_shows_fifty_per_page(client: Any, personas: Any) -> None:
    bulk_custom_actions(personas.tenant_a, 120)
    client.force_login(personas.viewer)
    response = client.get(URL, {"kind": "custom", "page": "3"})
    assert len(names_in(response)) == 20
    assert "Page 3 of 3" in response.content.decode()
