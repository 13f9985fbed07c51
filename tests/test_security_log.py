"""The platform security log: failed sign-ins and refused cross-tenant requests are recorded there
(never in a tenant's audit), rate-guarded, and shown only to platform staff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import RequestFactory

from audit_app import security
from audit_app.models import AuditEvent, SecurityEvent
from tests.factories import PASSWORD, make_operator

LOGIN = "/accounts/login/"
LOG = "/platform/security-log/"
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (probe)", "REMOTE_ADDR": "203.0.113.7"}


@pytest.fixture(autouse=True)
def fresh_rate_counters() -> None:
    # The rate guard's counters live in the cache, which outlives a test's database transaction.
    cache.clear()


@pytest.fixture
def staff(db: None) -> Any:
    user = make_operator("platform-staff")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def only_event() -> SecurityEvent:
    events = list(SecurityEvent.objects.all())
    assert len(events) == 1, events
    return events[0]


def test_a_failed_sign_in_is_recorded_with_username_and_address_and_no_audit_event(client: Any, personas: Any) -> None:
    audit_before = AuditEvent.objects.count()
    response = client.post(LOGIN, {"username": "a-owner", "password": "not-it"}, **BROWSER)
    assert response.status_code == 200  # the form again, with its error
    event = only_event()
    assert event.kind == "console.sign_in_failed"
    assert (event.username, event.user_id, event.ip) == ("a-owner", personas.owner.pk, "203.0.113.7")
    assert (event.path, event.user_agent, event.detail, event.tenant_slug) == (
        LOGIN,
        "Mozilla/5.0 (probe)",
        "wrong password",
        "",
    )
    assert event.request_id == response["X-Request-ID"]
    assert AuditEvent.objects.count() == audit_before


def test_an_unknown_username_is_recorded_as_such(client: Any, db: None) -> None:
    client.post(LOGIN, {"username": "mallory", "password": "guess"}, **BROWSER)
    event = only_event()
    assert (event.username, event.user_id, event.detail) == ("mallory", None, "unknown username")


def test_a_successful_sign_in_records_nothing(client: Any, personas: Any) -> None:
    response = client.post(LOGIN, {"username": "a-owner", "password": PASSWORD}, **BROWSER)
    assert response.status_code == 302
    assert not SecurityEvent.objects.exists()


def test_each_attempt_is_one_entry_also_under_an_axes_lockout(client: Any, personas: Any, settings: Any) -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    statuses = [client.post(LOGIN, {"username": "a-viewer", "password": "x"}, **BROWSER).status_code for _ in range(7)]
    assert statuses[-1] != 302
    details = list(SecurityEvent.objects.order_by("id").values_list("detail", flat=True))
    assert details == ["wrong password"] * 4 + ["locked out after repeated failures (django-axes)"] * 3


def test_a_refused_cross_tenant_request_is_recorded_and_no_tenant_sees_it(client: Any, personas: Any) -> None:
    audit_before = AuditEvent.objects.count()
    client.force_login(personas.outsider)
    assert client.get("/t/acme/actions/", **BROWSER).status_code == 404
    event = only_event()
    assert event.kind == "console.cross_tenant_refused"
    assert (event.username, event.user_id, event.tenant_slug) == ("b-owner", personas.outsider.pk, "acme")
    assert (event.detail, event.path, event.ip) == ("not a member of this tenant", "/t/acme/actions/", "203.0.113.7")
    assert AuditEvent.objects.count() == audit_before


def test_a_request_for_a_tenant_that_does_not_exist_is_recorded_differently(client: Any, personas: Any) -> None:
    client.force_login(personas.owner)
    assert client.get("/t/no-such-tenant/audit/").status_code == 404
    event = only_event()
    assert (event.tenant_slug, event.detail) == ("no-such-tenant", "no such tenant")


def test_members_and_anonymous_visitors_leave_no_entry(client: Any, personas: Any) -> None:
    assert client.get("/t/acme/actions/").status_code == 302  # anonymous: sign in first
    client.force_login(personas.viewer)
    assert client.get("/t/acme/actions/").status_code == 200
    assert not SecurityEvent.objects.exists()


def test_the_rate_guard_caps_entries_per_address(client: Any, personas: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(security, "SECURITY_LOG_PER_ADDRESS_PER_MINUTE", 3)
    client.force_login(personas.outsider)
    for _ in range(6):
        assert client.get("/t/acme/flows/", **BROWSER).status_code == 404  # refused all the same
    client.get("/t/acme/flows/", HTTP_USER_AGENT="other", REMOTE_ADDR="198.51.100.2")
    rows = list(SecurityEvent.objects.order_by("id").values_list("ip", "detail"))
    assert rows == [
        ("203.0.113.7", "not a member of this tenant"),
        ("203.0.113.7", "not a member of this tenant"),
        (
            "203.0.113.7",
            "not a member of this tenant (limit of 3 events a minute from this address reached; "
            "later ones this minute are not recorded)",
        ),
        ("198.51.100.2", "not a member of this tenant"),
    ]


def test_the_rate_guard_caps_the_whole_platform(client: Any, personas: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(security, "SECURITY_LOG_PER_MINUTE", 2)
    client.force_login(personas.outsider)
    for n in range(4):
        client.get("/t/acme/", REMOTE_ADDR=f"198.51.100.{n + 1}")
    assert SecurityEvent.objects.count() == 2
    assert "platform-wide limit of 2" in SecurityEvent.objects.order_by("id").last().detail  # type: ignore[union-attr]


def test_a_rejected_api_token_keeps_only_its_public_id(db: None) -> None:
    request = RequestFactory().get("/api/v1/actions", REMOTE_ADDR="192.0.2.5")
    security.record_rejected_token(request, "acx_k7xq_s3cr3t-value")
    security.record_rejected_token(request, "Basic abc")
    rows = list(SecurityEvent.objects.order_by("id").values_list("kind", "detail", "ip"))
    assert rows == [
        ("api.token_rejected", "token k7xq: unknown, revoked, expired or wrong secret", "192.0.2.5"),
        ("api.token_rejected", "not an acx_ token", "192.0.2.5"),
    ]
    assert not SecurityEvent.objects.filter(detail__contains="s3cr3t").exists()


# The staff page.


def add_entries(count: int, start: datetime, **fields: Any) -> None:
    SecurityEvent.objects.bulk_create(
        SecurityEvent(
            occurred_at=start + timedelta(seconds=n),
            kind=fields.get("kind", "console.sign_in_failed"),
            username=fields.get("username", f"user-{n}"),
            ip=fields.get("ip", "203.0.113.7"),
            detail="wrong password",
        )
        for n in range(count)
    )


T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_staff_see_the_log_newest_first(client: Any, staff: Any) -> None:
    add_entries(3, T0)
    client.force_login(staff)
    response = client.get(LOG)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("user-2") < html.index("user-1") < html.index("user-0")
    assert "2025-03-01 12:00:02" in html


def test_staff_filter_by_kind_username_address_and_time(client: Any, staff: Any) -> None:
    add_entries(3, T0)
    add_entries(1, T0, kind="console.cross_tenant_refused", username="b-owner", ip="198.51.100.9")
    client.force_login(staff)

    def shown(**params: str) -> list[str]:
        page = client.get(LOG, params).context["page"]
        return [event.username for event in page.events]

    assert shown(kind="console.cross_tenant_refused") == ["b-owner"]
    assert shown(username="user-1") == ["user-1"]
    assert shown(ip="198.51.100.9") == ["b-owner"]
    assert shown(since="2025-03-01T12:00:01", until="2025-03-01T12:00:01") == ["user-1"]


def test_bad_filters_are_named_and_the_rest_still_applies(client: Any, staff: Any) -> None:
    add_entries(2, T0)
    client.force_login(staff)
    response = client.get(LOG, {"ip": "999.1.1.1", "since": "yesterday", "username": "user-0"})
    html = response.content.decode()
    assert "<strong>ip</strong>: Enter one IP address" in html
    assert "<strong>since</strong>: Enter a date and time like" in html
    assert 'value="999.1.1.1"' in html and 'value="yesterday"' in html  # what was typed stays
    assert [e.username for e in response.context["page"].events] == ["user-0"]


def test_staff_page_through_with_keyset_links(client: Any, staff: Any, django_assert_max_num_queries: Any) -> None:
    add_entries(3000, T0)
    client.force_login(staff)
    first = client.get(LOG).context
    assert [e.username for e in first["page"].events][:2] == ["user-2999", "user-2998"]
    assert first["newer_qs"] is None
    # session, user, the tenant switcher, the page, and whether newer rows exist
    with django_assert_max_num_queries(5):
        second = client.get(f"{LOG}?{first['older_qs']}").context
    assert second["page"].events[0].username == "user-2949"
    back = client.get(f"{LOG}?{second['newer_qs']}").context
    assert back["page"].events[0].username == "user-2999"
    assert back["newer_qs"] is None


def test_the_htmx_filter_answers_with_the_results_only(client: Any, staff: Any) -> None:
    add_entries(1, T0)
    client.force_login(staff)
    response = client.get(LOG, HTTP_HX_REQUEST="true")
    assert response.content.lstrip().startswith(b'<section id="results"')


def test_operators_get_404_whatever_their_role(client: Any, personas: Any) -> None:
    for user in [*personas.by_role().values(), personas.outsider]:
        client.force_login(user)
        assert client.get(LOG).status_code == 404
        assert client.post(LOG).status_code == 404


def test_a_superuser_flag_without_staff_is_not_enough(client: Any, db: None) -> None:
    user = get_user_model().objects.create_user("root-ish", "r@example.com", PASSWORD, is_superuser=True)
    client.force_login(user)
    assert client.get(LOG).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client: Any, db: None) -> None:
    response = client.get(LOG)
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_purge_audit_also_ages_out_the_security_log(db: Any, settings: Any) -> None:
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    from audit_app.models import SecurityEvent

    settings.SECURITY_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    old = SecurityEvent.objects.create(
        kind="console.sign_in_failed", username="x", occurred_at=now - timedelta(days=31)
    )
    recent = SecurityEvent.objects.create(
        kind="console.sign_in_failed", username="y", occurred_at=now - timedelta(days=29)
    )
    out = StringIO()
    call_command("purge_audit", "--dry-run", stdout=out)
    assert "security log: would purge 1 entries" in out.getvalue()
    assert SecurityEvent.objects.filter(pk=old.pk).exists()
    call_command("purge_audit", stdout=StringIO())
    assert list(SecurityEvent.objects.values_list("pk", flat=True)) == [recent.pk]


def test_the_api_records_a_rejected_bearer_token_and_never_its_secret(
    client: Any, personas: Any, api_token: Any
) -> None:
    from django.utils import timezone

    from tenants.models import ApiToken

    good = api_token("actions:read")
    key_id = good.split("_")[1]
    ApiToken.objects.filter(key_id=key_id).update(revoked_at=timezone.now())
    answer = client.get("/api/v1/actions", headers={"Authorization": f"Bearer {good}"}, REMOTE_ADDR="192.0.2.77")
    assert answer.status_code == 401
    entry = SecurityEvent.objects.get(kind="api.token_rejected")
    assert key_id in entry.detail and good.split("_", 2)[2] not in entry.detail
    assert (entry.ip, entry.path) == ("192.0.2.77", "/api/v1/actions")
    # A valid token leaves nothing.
    assert (
        client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {api_token('actions:read')}"}).status_code
        == 200
    )
    assert SecurityEvent.objects.count() == 1


def test_odd_page_links_and_nul_usernames_are_named_not_500(client: Any, staff: Any) -> None:
    client.force_login(staff)
    for query in ("before=%C2%B2", "after=%D9%A3", "before=99999999999999999999999"):
        response = client.get(f"/platform/security-log/?{query}")
        assert response.status_code == 200, query
        assert "This page link is not valid" in response.content.decode()
    response = client.get("/platform/security-log/?username=a%00b")
    assert response.status_code == 200
    assert "A username cannot contain a NUL character." in response.content.decode()
