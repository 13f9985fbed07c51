"""Contract §14 in the console: restore an earlier revision from the revisions page, promote one
flow into another from the flow editor, each after a preview of the difference."""

from __future__ import annotations

from typing import Any

import pytest

from audit_app.models import AuditEvent
from flows_app.deleting import delete_action
from flows_app.models import Binding
from flows_app.services import BindingSpec, create_flow
from tests.factories import web
from tests.flow_helpers import SYSTEM, attach, custom_action, flow_of

POST_AUTH = "login.post-auth"
RESTORE = "/t/acme/flows/login/revisions/2/restore/"
PROMOTE = "/t/acme/flows/login-staging/promote/login/"


def risk_block(threshold: int) -> BindingSpec:
    return BindingSpec("block-by-risk-score", "1.0.0", {"threshold": threshold, "message": "risky"})


def thresholds(tenant: Any, slug: str = "login") -> list[int]:
    revision = flow_of(tenant, slug).current_revision
    return [b.config["threshold"] for b in Binding.objects.filter(revision=revision, trigger=POST_AUTH)]


@pytest.fixture
def saved_twice(personas: Any) -> Any:
    """login: r1 empty · r2 risk block at 50 · r3 at 90; login-staging (same kind): r2 at 75."""
    attach(personas.tenant_a, POST_AUTH, risk_block(50))
    attach(personas.tenant_a, POST_AUTH, risk_block(90))
    create_flow(personas.tenant_a, name="Login staging", slug="login-staging", kind="login", acting=SYSTEM)
    attach(personas.tenant_a, POST_AUTH, risk_block(75), flow_slug="login-staging")
    return personas


def test_the_revisions_page_offers_restoring_each_earlier_revision(saved_twice: Any) -> None:
    html = web(saved_twice.viewer).get("/t/acme/flows/login/revisions/").content.decode()
    assert 'href="/t/acme/flows/login/revisions/2/restore/">Restore r2…' in html
    assert 'href="/t/acme/flows/login/revisions/1/restore/"' in html
    assert "/revisions/3/restore/" not in html  # r3 is the current revision


def test_an_editor_previews_then_restores_and_the_history_grows(saved_twice: Any) -> None:
    editor = web(saved_twice.editor)
    preview = editor.get(RESTORE)
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Restore revision 2 of Login?" in html
    assert "config.threshold" in html and "<code>90</code>" in html and "→ <code>50</code>" in html
    assert 'name="base_revision" value="3"' in html and "Restore r2 as r4" in html
    response = editor.post(RESTORE, {"base_revision": "3"})
    assert response.status_code == 302 and response["Location"] == "/t/acme/flows/login/revisions/"
    assert thresholds(saved_twice.tenant_a) == [50]
    revisions = editor.get("/t/acme/flows/login/revisions/").content.decode()
    assert "Restored revision 2 as revision 4 of login." in revisions
    assert '<code>r4</code> <span class="status status-published">current</span>' in revisions
    assert "<code>r3</code>" in revisions  # nothing rewritten
    (event,) = AuditEvent.objects.filter(tenant=saved_twice.tenant_a, flow_revision=4)
    assert (event.type, event.actor_id, event.target) == (
        "flow.action_updated",
        str(saved_twice.editor.pk),
        "Restored revision 2",
    )


def test_a_viewer_sees_the_preview_but_may_not_restore_or_promote(saved_twice: Any) -> None:
    viewer = web(saved_twice.viewer)
    html = viewer.get(RESTORE).content.decode()
    assert "Your role cannot change Login" in html and 'name="base_revision"' not in html
    assert viewer.post(RESTORE, {"base_revision": "3"}).status_code == 403
    assert "Your role cannot change Login" in viewer.get(PROMOTE).content.decode()
    assert viewer.post(PROMOTE, {"base_revision": "3", "source_revision": "2"}).status_code == 403
    assert thresholds(saved_twice.tenant_a) == [90]


def test_other_tenants_and_unknown_revisions_are_404(saved_twice: Any) -> None:
    outsider = web(saved_twice.outsider)
    for url in (RESTORE, PROMOTE, "/t/acme/flows/login-staging/promote/"):
        assert outsider.get(url).status_code == 404
        assert outsider.post(url, {"base_revision": "3", "source_revision": "2"}).status_code == 404
    editor = web(saved_twice.editor)
    assert editor.get("/t/acme/flows/login/revisions/9/restore/").status_code == 404
    assert editor.get(f"/t/acme/flows/login/revisions/{'9' * 30}/restore/").status_code == 404
    assert editor.get("/t/acme/flows/login-staging/promote/nope/").status_code == 404
    # Another tenant's flow as the target is not found either.
    create_flow(saved_twice.tenant_b, name="Theirs", slug="theirs", kind="login", acting=SYSTEM)
    assert editor.post("/t/acme/flows/login/promote/theirs/", {"base_revision": "1"}).status_code == 404
    assert thresholds(saved_twice.tenant_a) == [90]


def test_a_flow_saved_since_the_preview_gets_a_fresh_preview_not_an_overwrite(saved_twice: Any) -> None:
    editor = web(saved_twice.editor)
    attach(saved_twice.tenant_a, POST_AUTH, risk_block(95))  # r4, by someone else
    response = editor.post(RESTORE, {"base_revision": "3"})
    html = response.content.decode()
    assert response.status_code == 409
    assert "was saved since this preview was made (now r4" in html and "Nothing was changed" in html
    assert "<code>95</code>" in html and 'name="base_revision" value="4"' in html
    assert thresholds(saved_twice.tenant_a) == [95]
    assert editor.post(RESTORE, {}).status_code == 409  # no revision: never a blind overwrite
    assert editor.post(RESTORE, {"base_revision": "4"}).status_code == 302
    assert thresholds(saved_twice.tenant_a) == [50]


def test_a_revision_that_cannot_be_restored_says_which_binding_and_why(personas: Any) -> None:
    tenant = personas.tenant_a
    custom_action(tenant, "geo-gate", 'return { kind: "continue" };', [POST_AUTH])
    attach(tenant, POST_AUTH, risk_block(50), BindingSpec("geo-gate", "0.1.0", {}))
    attach(tenant, POST_AUTH)
    delete_action(tenant.actions.get(slug="geo-gate"), acting=SYSTEM)
    editor = web(personas.editor)
    html = editor.get(RESTORE).content.decode()
    assert "<code>r2</code> cannot be restored" in html
    assert "<code>login.post-auth</code> #2 <code>geo-gate</code>: The action geo-gate was deleted after r2" in html
    assert 'name="base_revision"' not in html
    response = editor.post(RESTORE, {"base_revision": "3"})
    assert response.status_code == 422 and b"Nothing was saved" in response.content
    assert flow_of(tenant).current_revision.number == 3  # type: ignore[union-attr]


def test_restoring_what_is_already_running_offers_nothing(saved_twice: Any) -> None:
    attach(saved_twice.tenant_a, POST_AUTH, risk_block(50))  # r4 equals r2
    html = web(saved_twice.editor).get(RESTORE).content.decode()
    assert "Nothing to restore" in html and 'name="base_revision"' not in html


def test_promote_into_lists_flows_of_the_same_kind_only(saved_twice: Any) -> None:
    create_flow(saved_twice.tenant_a, name="Signup staging", slug="signup-staging", kind="registration", acting=SYSTEM)
    editor = web(saved_twice.editor)
    assert 'href="/t/acme/flows/login-staging/promote/"' in editor.get("/t/acme/flows/login-staging/").content.decode()
    html = editor.get("/t/acme/flows/login-staging/promote/").content.decode()
    assert 'href="/t/acme/flows/login-staging/promote/login/"' in html
    assert "signup-staging" not in html and "/promote/login-staging/" not in html
    empty = editor.get("/t/acme/flows/token-refresh/promote/").content.decode()
    assert "No other token-refresh flow to promote into" in empty
    refused = editor.get("/t/acme/flows/login-staging/promote/signup-staging/")
    assert refused.status_code == 200 and b"only a flow of the same kind" in refused.content
    assert editor.post("/t/acme/flows/login-staging/promote/signup-staging/", {"base_revision": "1"}).status_code == 422


def test_an_editor_previews_then_promotes_the_previewed_source_revision(saved_twice: Any) -> None:
    editor = web(saved_twice.editor)
    html = editor.get(PROMOTE).content.decode()
    assert "Promote Login staging into Login?" in html
    assert "<code>90</code>" in html and "→ <code>75</code>" in html
    assert 'name="base_revision" value="3"' in html and 'name="source_revision" value="2"' in html
    # Staging moves on after the preview: what was previewed (r2, 75) is what is promoted.
    attach(saved_twice.tenant_a, POST_AUTH, risk_block(10), flow_slug="login-staging")
    response = editor.post(PROMOTE, {"base_revision": "3", "source_revision": "2"})
    assert response.status_code == 302
    assert thresholds(saved_twice.tenant_a) == [75]
    (event,) = AuditEvent.objects.filter(tenant=saved_twice.tenant_a, flow_slug="login", flow_revision=4)
    assert (event.type, event.actor_kind, event.target) == (
        "flow.action_updated",
        "user",
        "Promoted from login-staging r2",
    )
    # A stale target: a fresh preview, nothing promoted.
    stale = editor.post(PROMOTE, {"base_revision": "3", "source_revision": "3"})
    assert stale.status_code == 409 and b"was saved since this preview was made (now r4" in stale.content
    assert thresholds(saved_twice.tenant_a) == [75]
