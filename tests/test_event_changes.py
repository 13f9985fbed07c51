"""A change of a binding in the audit log reads as the revision diff does, setting by setting
(`config.threshold 80 → 10`), with the note of the revision it made."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from audit_app.models import AuditEvent
from flows_app.services import BindingSpec, save_flow_slots
from tests.factories import region
from tests.flow_helpers import SYSTEM, attach, flow_of

POST_AUTH = "login.post-auth"
PRE_AUTH = "login.pre-credential-check"
KEY = "0000000000000000000000000000abcd"


def _save(tenant: Any, trigger: str, spec: BindingSpec, comment: str = "") -> None:
    flow = flow_of(tenant)
    assert flow.current_revision is not None
    save_flow_slots(
        flow, {trigger: [spec]}, expected_revision=flow.current_revision.number, comment=comment, acting=SYSTEM
    )


def _text(html: str) -> str:
    """The page as read on screen (without the screen-reader-only words)."""
    seen = re.sub(r'<span class="sr-only">[^<]*</span>', "", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", seen))


@pytest.fixture
def lowered(personas: Any) -> AuditEvent:
    """The demo incident's change: block-by-risk-score's threshold from 80 to 10, with a note."""
    key = uuid.UUID(KEY)
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}, key=key))
    spec = BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 10}, key=key, timeout_ms=500)
    _save(personas.tenant_a, POST_AUTH, spec, comment="Stricter during the campaign")
    return AuditEvent.objects.get(type="flow.action_updated")


def test_an_updated_binding_shows_each_changed_setting_and_the_revisions_note(
    client: Any, personas: Any, lowered: AuditEvent
) -> None:
    client.force_login(personas.viewer)
    page = client.get(f"/t/acme/audit/{lowered.pk}/").content.decode()
    changes = region(page, "event-changes", "</table>")
    assert "config.threshold 80 → 10" in _text(changes)
    assert "Timeout 1000 ms → 500 ms" in _text(changes)
    assert "Version" not in changes  # only what changed
    assert "Note: “Stricter during the campaign”" in page
    revision = lowered.flow_revision
    assert revision is not None
    assert f'href="/t/acme/flows/login/revisions/diff/?from={revision - 1}&amp;to={revision}"' in page
    assert "Recorded before and after" in page  # the raw record stays below


def test_the_audit_log_and_the_timeline_say_what_an_update_changed(
    client: Any, personas: Any, lowered: AuditEvent
) -> None:
    client.force_login(personas.viewer)
    log = client.get("/t/acme/audit/", {"type": "flow.action_updated"}).content.decode()
    assert "config.threshold 80 → 10" in _text(log)
    at = lowered.occurred_at
    window = {"since": f"{at:%Y-%m-%dT%H}:00", "until": f"{at:%Y-%m-%dT%H}:59"}
    timeline = client.get("/t/acme/audit/timeline/", window).content.decode()
    changes_table = timeline[timeline.index('class="data tl-changes"') :]
    assert "config.threshold 80 → 10" in _text(changes_table)


def test_a_changed_secret_is_named_never_shown(client: Any, personas: Any) -> None:
    key = uuid.UUID(KEY)
    first = {"url": "https://hooks.example.com/in", "secret": "first-secret-0123456789"}
    attach(personas.tenant_a, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", first, key=key))
    second = {**first, "secret": "second-secret-0123456789"}
    _save(personas.tenant_a, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", second, key=key))
    event = AuditEvent.objects.get(type="flow.action_updated")
    client.force_login(personas.viewer)
    page = client.get(f"/t/acme/audit/{event.pk}/").content.decode()
    assert "secret values •••••• → •••••• (changed)" in _text(page)
    assert "first-secret" not in page and "second-secret" not in page
    assert "Saved without a note." in page


def test_a_version_upgrade_and_a_switch_off_read_as_words(client: Any, personas: Any) -> None:
    key = uuid.UUID(KEY)
    config = {"limit": 5, "window_seconds": 60}
    attach(personas.tenant_a, PRE_AUTH, BindingSpec("rate-limit-by-ip", "1.0.0", config, key=key))
    upgraded = BindingSpec(
        "rate-limit-by-ip", "1.1.0", {**config, "allow_cidrs": ["10.0.0.0/8"]}, key=key, enabled=False
    )
    _save(personas.tenant_a, PRE_AUTH, upgraded)
    event = AuditEvent.objects.get(type="flow.action_updated")
    client.force_login(personas.viewer)
    text = _text(client.get(f"/t/acme/audit/{event.pk}/").content.decode())
    assert "Version 1.0.0 → 1.1.0" in text and "Enabled enabled → disabled" in text
    assert 'config.allow_cidrs (not set) → ["10.0.0.0/8"]' in text.replace("&quot;", '"')


def test_an_attached_binding_has_no_change_table_but_its_record(client: Any, personas: Any) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}))
    event = AuditEvent.objects.get(type="flow.action_attached")
    client.force_login(personas.viewer)
    page = client.get(f"/t/acme/audit/{event.pk}/").content.decode()
    assert 'id="event-changes"' not in page and "Before and after" in page
    assert 'id="event-revision"' in page
