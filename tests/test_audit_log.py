"""The audit log page, an event's page and the exports (contract §7)."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.http import StreamingHttpResponse

from audit_app.models import AuditEvent
from audit_app.queries import Cursor
from audit_app.services import EventDraft, record, record_many
from tenants.acting import Actor, RequestMeta
from tenants.permissions import grant_object_to_operator
from tests.factories import ALICE, T0, add_custom_action, add_events, build_story, make_operator


def log_url(tenant: str = "acme") -> str:
    return f"/t/{tenant}/audit/"


@pytest.fixture
def story(personas: Any) -> dict[str, AuditEvent]:
    return build_story(personas)


def shown_ids(response: Any) -> list[int]:
    events = response.context["page"].events
    return [e.pk for e in events]


def story_ids(story: dict[str, AuditEvent], *names: str) -> list[int]:
    return [story[n].pk for n in names]


def test_it_lists_newest_first_for_a_viewer(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(log_url())
    assert response.status_code == 200
    ids = shown_ids(response)
    # The personas' member.added events happened "now", after the story.
    assert ids[-5:] == story_ids(story, "token", "continued", "blocked", "updated", "saved")
    times = [e.occurred_at for e in response.context["page"].events]
    assert times == sorted(times, reverse=True)
    assert b"geo-block" in response.content


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "flow.action_executed"}, ["continued", "blocked"]),
        ({"type": ["flow.action_executed", "api_token.created"]}, ["token", "continued", "blocked"]),
        ({"action": "geo-block", "type": "flow.action_updated"}, ["updated"]),
        ({"flow": "login"}, ["blocked", "updated"]),
        ({"actor": "deploy"}, ["token"]),
        ({"actor": "k7xq"}, ["token"]),
        ({"actor": "41"}, ["updated", "saved"]),  # exact id, not "contains"
        ({"outcome": "block"}, ["blocked"]),
        ({"outcome": "continue"}, ["continued"]),
        ({"since": "2025-03-01T12:01", "until": "2025-03-01T12:03"}, ["continued", "blocked", "updated"]),
        ({"until": "2025-03-01T12:00:00"}, ["saved"]),
        ({"q": "tx-blocked"}, ["blocked"]),
        ({"q": "REQ-ABC"}, ["updated", "saved"]),
        ({"q": "signup"}, ["continued"]),
        ({"q": "hyperlink"}, ["token"]),
        ({"q": "engine"}, ["continued", "blocked"]),
    ],
)
def test_it_filters(client: Any, personas: Any, story: Any, params: dict[str, Any], expected: list[str]) -> None:
    client.force_login(personas.viewer)
    response = client.get(log_url(), params)
    assert response.status_code == 200
    assert shown_ids(response) == story_ids(story, *expected)


def test_actor_name_contains_is_case_insensitive(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(log_url(), {"actor": "ALIC", "since": "2025-01-01T00:00"})
    assert shown_ids(response)[-2:] == story_ids(story, "updated", "saved")


def test_a_bad_datetime_is_shown_next_to_the_filters_and_left_out(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(log_url(), {"since": "yesterday", "type": "flow.action_executed"})
    assert response.status_code == 200
    assert b"Enter a date and time" in response.content
    assert b'value="yesterday"' in response.content
    assert shown_ids(response) == story_ids(story, "continued", "blocked")


def test_a_bad_cursor_starts_from_the_newest(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(log_url(), {"cursor": "not-a-cursor!", "type": "api_token.created"})
    assert response.status_code == 200
    assert b"This cursor is not valid" in response.content
    assert shown_ids(response) == story_ids(story, "token")


def test_htmx_gets_only_the_results(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(log_url(), {"type": "flow.action_executed"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert "<form" not in body
    assert "tx-blocked-1" not in body  # not shown in the list, but the rows are
    assert f"/t/acme/audit/{story['blocked'].pk}/" in body


def test_the_form_and_links_work_without_javascript(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    body = client.get(log_url()).content.decode()
    assert 'method="get" action="/t/acme/audit/"' in body
    assert 'name="type" multiple' in body
    assert 'href="/t/acme/audit/export.csv"' in body


def _page_link(response: Any, rel: str) -> str | None:
    page = response.context["page"]
    cursor = page.older if rel == "older" else page.newer
    if cursor is None:
        return None
    qs = response.context[f"{rel}_qs"]
    assert f'href="?{qs}"'.replace("&", "&amp;") in response.content.decode()
    return f"?{qs}"


def test_keyset_pages_walk_the_whole_log_and_back(client: Any, personas: Any) -> None:
    events = add_events(personas.tenant_a, 120, event_type="flow.action_executed", after={"outcome": "continue"})
    newest_first = [e.pk for e in reversed(events)]
    client.force_login(personas.viewer)
    params = "?type=flow.action_executed"
    first = client.get(log_url() + params)
    assert shown_ids(first) == newest_first[:50]
    assert _page_link(first, "newer") is None
    second = client.get(log_url() + _page_link(first, "older"))  # type: ignore[operator]
    assert shown_ids(second) == newest_first[50:100]
    third = client.get(log_url() + _page_link(second, "older"))  # type: ignore[operator]
    assert shown_ids(third) == newest_first[100:]
    assert _page_link(third, "older") is None
    back = client.get(log_url() + _page_link(third, "newer"))  # type: ignore[operator]
    assert shown_ids(back) == newest_first[50:100]
    # the filter travels with the cursor
    assert "type=flow.action_executed" in _page_link(back, "newer")  # type: ignore[operator]


def test_a_new_event_never_shifts_the_next_page(client: Any, personas: Any) -> None:
    events = add_events(personas.tenant_a, 60, event_type="action.created")
    client.force_login(personas.viewer)
    first = client.get(log_url(), {"type": "action.created"})
    older = _page_link(first, "older")
    before = shown_ids(client.get(log_url() + older))  # type: ignore[operator]
    with transaction.atomic():
        record(tenant=personas.tenant_a, event_type="action.created", actor=ALICE, action_slug="brand-new")
    after = shown_ids(client.get(log_url() + older))  # type: ignore[operator]
    assert after == before == [e.pk for e in reversed(events)][50:]


def test_events_with_the_same_time_are_paged_by_id(client: Any, personas: Any) -> None:
    drafts = [EventDraft(personas.tenant_a, "action.created", ALICE, occurred_at=T0) for _ in range(55)]
    with transaction.atomic():
        rows = record_many(drafts)
    client.force_login(personas.viewer)
    first = client.get(log_url(), {"type": "action.created"})
    second = client.get(log_url() + _page_link(first, "older"))  # type: ignore[operator]
    assert shown_ids(first) + shown_ids(second) == sorted((r.pk for r in rows), reverse=True)


def test_the_log_page_costs_the_same_queries_with_thousands_of_events(
    client: Any, personas: Any, django_assert_max_num_queries: Any
) -> None:
    add_events(personas.tenant_a, 3000)
    client.force_login(personas.viewer)
    first = client.get(log_url())
    link = _page_link(first, "older")
    # One of them asks whether any flow run is still pending (flows_app.run_records).
    with django_assert_max_num_queries(7):
        client.get(log_url() + link)  # type: ignore[operator]
    with django_assert_max_num_queries(7):
        client.get(log_url(), {"q": "act-2", "actor": "alice"})


def test_an_outsider_gets_404(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.outsider)
    assert client.get(log_url()).status_code == 404
    assert client.get(f"/t/acme/audit/{story['saved'].pk}/").status_code == 404


def test_a_single_object_grant_contractor_reads_no_audit_history(client: Any, personas: Any, story: Any) -> None:
    contractor = make_operator("contractor")
    grant_object_to_operator(contractor, "view_action", add_custom_action(personas.tenant_a, "granted"))
    client.force_login(contractor)
    response = client.get(log_url())
    assert response.status_code == 200
    assert shown_ids(response) == []
    assert b"geo-block" not in response.content
    assert client.get(f"/t/acme/audit/{story['saved'].pk}/").status_code == 404
    export = client.get("/t/acme/audit/export.jsonl")
    assert export.getvalue() == b""


# --- one event --------------------------------------------------------------------------------


def test_the_event_page_says_who_when_where_and_what(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get(f"/t/acme/audit/{story['updated'].pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "alice",
        "<code>41</code>",
        "203.0.113.9",
        "curl/8",
        "req-abc123",
        "login.post-auth",
        "2025-03-01 12:01:00",
    ):
        assert text in body, text
    assert 'href="/t/acme/actions/geo-block/"' in body
    assert 'href="/t/acme/flows/login/revisions/"' in body
    assert "revision 7" in body
    rows = {row["key"]: row for row in response.context["diff"]}
    assert rows["config"]["change"] == "changed"
    assert rows["enabled"]["change"] == "removed"
    assert rows["order"]["change"] == "added"
    assert "••••" in body  # shown as the writer masked it


def test_the_event_page_links_the_action_version_and_transaction(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    body = client.get(f"/t/acme/audit/{story['blocked'].pk}/").content.decode()
    assert 'href="/t/acme/actions/geo-block/versions/0.2.0/"' in body
    # A transaction id leads to its trace, not to a search (issue 15).
    assert 'href="/t/acme/flows/login/transactions/tx-blocked-1/"' in body
    assert "block" in body


def test_another_tenants_event_is_404(client: Any, personas: Any) -> None:
    theirs = add_events(personas.tenant_b, 1)[0]
    client.force_login(personas.owner)
    assert client.get(f"/t/acme/audit/{theirs.pk}/").status_code == 404
    assert client.get("/t/acme/audit/not-a-number/").status_code == 404
    assert client.get("/t/acme/audit/99999999/").status_code == 404


# --- exports ----------------------------------------------------------------------------------


def _streamed(response: Any) -> str:
    assert isinstance(response, StreamingHttpResponse)
    assert response.streaming
    return bytes(response.getvalue()).decode()


def test_the_csv_export_streams_the_filtered_events(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get("/t/acme/audit/export.csv", {"type": ["flow.action_executed", "api_token.created"]})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="audit-acme.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_streamed(response))))
    assert [int(r["id"]) for r in rows] == story_ids(story, "token", "continued", "blocked")
    blocked = rows[2]
    assert blocked["occurred_at"] == "2025-03-01T12:02:00Z"
    assert blocked["transaction_id"] == "tx-blocked-1"
    assert json.loads(blocked["after"]) == {"duration_ms": 1.5, "outcome": "block"}
    # a cell a spreadsheet would run as a formula is quoted
    assert rows[0]["target"] == "'=HYPERLINK(evil)"


# Cells a spreadsheet runs as a formula once it has folded look-alikes to ASCII or dropped what
# does not show (LibreOffice and Excel both do some of this on import).
FORMULA_LOOKALIKES = [
    '＝HYPERLINK("https://evil.example")',  # fullwidth equals
    "＋1+cmd|' /C calc'!A0",  # fullwidth plus
    "－1+1",  # fullwidth hyphen-minus
    "＠SUM(1+1)",  # fullwidth commercial at
    "﹦1+1",  # small equals
    "﹢1+1",  # small plus
    "﹣1+1",  # small hyphen-minus
    "﹫SUM(1)",  # small commercial at
    "\u200b=1+1",  # zero-width space
    "\ufeff=1+1",  # byte order mark
    "\u2060\u200b+1",  # word joiner, zero-width space
    "\u200e@SUM(1)",  # left-to-right mark
    " =1+1",  # a space
    "\u00a0=1+1",  # no-break space
    "\u3000＝1+1",  # ideographic space, fullwidth equals
    "\n=1+1",
    "\t=1+1",
    "\r-1+1",
    # Blank or invisible, though not Cc/Cf/Z*: Unicode's Default_Ignorable_Code_Point and the braille blank.
    "\u3164=1+1",  # Hangul filler
    "\u115f=1+1",  # Hangul choseong filler
    "\u1160+1",  # Hangul jungseong filler
    "\uffa0@SUM(1)",  # halfwidth Hangul filler
    "\u034f=1+1",  # combining grapheme joiner
    "\u17b4\u17b5-1+1",  # Khmer inherent vowels
    "\u180b\u180f=1",  # Mongolian free variation selectors
    "\ufe0f=1+1",  # variation selector 16
    "\u2800=1+1",  # braille pattern blank
    "\u00ad=1+1",  # soft hyphen
    "\u061c=1+1",  # Arabic letter mark
    "\u2065=1+1",  # unassigned, but ignorable
    "\ufff0=1+1",  # unassigned specials
    "\U0001bca0=1+1",  # shorthand format letter overlap
    "\U0001d173=1+1",  # musical symbol begin beam
    "\U000e0001=1+1",  # language tag
    "\U000e0100=1+1",  # variation selector 17
    "\U000e0fff=1+1",  # the end of the ignorable tag block
    "\u3164\u2800\ufe0f\u200b＝1",  # several, then a fullwidth sign
]
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), and U+2800, which shows as blank.
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]


def test_a_formula_sign_after_any_ignorable_character_is_neutralised() -> None:
    from audit_app.exports import _csv_cell

    for first, last in DEFAULT_IGNORABLE:
        for code_point in range(first, last + 1):
            text = chr(code_point) + "=1+1"
            assert _csv_cell(text) == "'" + text, f"U+{code_point:04X}"
    # ...and only a formula: an ignorable character before plain text stays as it is.
    assert _csv_cell("\u3164hello") == "\u3164hello"


def test_the_csv_export_neutralises_formulas_behind_lookalikes(client: Any, personas: Any) -> None:
    drafts = [
        EventDraft(
            personas.tenant_a,
            "api_token.created",
            Actor("user", "41", text),
            RequestMeta(user_agent=text),
            target=text,
            occurred_at=T0 + timedelta(seconds=n),
        )
        for n, text in enumerate(FORMULA_LOOKALIKES)
    ]
    with transaction.atomic():
        record_many(drafts)
    client.force_login(personas.viewer)
    rows = list(
        csv.DictReader(io.StringIO(_streamed(client.get("/t/acme/audit/export.csv", {"type": "api_token.created"}))))
    )
    assert len(rows) == len(FORMULA_LOOKALIKES)
    for row in rows:
        for column in ("actor_name", "target", "user_agent"):
            assert row[column].startswith("'"), f"{column} {row[column]!r} is not neutralised"
            assert row[column][1:] in FORMULA_LOOKALIKES  # nothing else changed


@pytest.mark.parametrize("text", ["plain", "ünïcode", "１２３", "\u200bhello", "a=b", "日本", "-", "", "'quoted"])
def test_the_csv_export_leaves_cells_that_are_not_formulas_alone(client: Any, personas: Any, text: str) -> None:
    add_events(personas.tenant_a, 1, target=text)
    client.force_login(personas.viewer)
    rows = list(
        csv.DictReader(io.StringIO(_streamed(client.get("/t/acme/audit/export.csv", {"type": "action.version_saved"}))))
    )
    expected = "'-" if text == "-" else text
    assert [row["target"] for row in rows] == [expected]


def test_the_jsonl_export_has_the_api_shape(client: Any, personas: Any, story: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get("/t/acme/audit/export.jsonl", {"outcome": "block"})
    lines = _streamed(response).splitlines()
    assert len(lines) == 1
    item = json.loads(lines[0])
    assert item["id"] == story["blocked"].pk
    assert item["subject"] == {
        "action": "geo-block",
        "version": "0.2.0",
        "flow": "login",
        "revision": 7,
        "trigger": "login.post-auth",
        "target": None,
    }
    assert item["actor"] == {"kind": "system", "id": "", "name": "engine"}


def test_exports_read_the_database_in_chunks(client: Any, personas: Any, monkeypatch: Any) -> None:
    from audit_app.models import AuditEventQuerySet

    seen: list[int] = []
    original = AuditEventQuerySet.iterator

    def spy(self: Any, chunk_size: int | None = None) -> Any:
        seen.append(chunk_size or 0)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(AuditEventQuerySet, "iterator", spy)
    add_events(personas.tenant_a, 2500)
    client.force_login(personas.viewer)
    response = client.get("/t/acme/audit/export.csv", {"type": "action.version_saved"})
    assert seen == []  # nothing read before the body is consumed
    assert len(_streamed(response).splitlines()) == 2501
    assert seen == [2000]


def test_exports_refuse_a_filter_they_cannot_read(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    assert client.get("/t/acme/audit/export.csv", {"since": "soon"}).status_code == 400


def test_cursors_are_opaque_round_trips() -> None:
    cursor = Cursor(T0 + timedelta(microseconds=7), 42)
    assert Cursor.decode(cursor.encode()) == cursor


def test_newer_from_a_one_row_last_page_links_back_older(client: Any, personas: Any) -> None:
    events = add_events(personas.tenant_a, 51, event_type="action.created")
    client.force_login(personas.viewer)
    first = client.get(log_url(), {"type": "action.created"})
    last = client.get(log_url() + _page_link(first, "older"))  # type: ignore[operator]
    assert shown_ids(last) == [events[0].pk]
    back = client.get(log_url() + _page_link(last, "newer"))  # type: ignore[operator]
    assert shown_ids(back) == [e.pk for e in reversed(events)][:50]
    assert _page_link(back, "older") is not None
    assert _page_link(back, "newer") is None


def test_a_deeply_nested_cursor_is_refused_not_a_crash(client: Any, personas: Any, story: Any, api_token: Any) -> None:
    nested = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode().rstrip("=")
    client.force_login(personas.viewer)
    page = client.get(log_url(), {"cursor": nested})
    assert page.status_code == 200 and b"This cursor is not valid" in page.content
    token = api_token("audit:read")
    answer = client.get("/api/v1/audit", {"cursor": nested}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and answer.json()["error"]["details"][0]["field"] == "cursor"
