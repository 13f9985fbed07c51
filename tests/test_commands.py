from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from actions_app.models import Action, ActionVersion
from flows_app.services import BindingSpec, InvalidBindings
from tenants.models import ApiToken, Membership, Tenant
from tests.flow_helpers import attach

# seed_demo founds acme and globex itself: start from the database as migrations leave it.
pytestmark = pytest.mark.usefixtures("without_personas")


def test_seed_demo_creates_the_contracts_tenants_and_operators(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    assert sorted(Tenant.objects.values_list("slug", flat=True)) == ["acme", "globex"]
    roles = {(m.user.username, m.tenant.slug): m.role for m in Membership.objects.select_related("user", "tenant")}
    assert roles == {
        ("alice", "acme"): "owner",
        ("eddie", "acme"): "editor",
        ("victor", "acme"): "viewer",
        ("gina", "globex"): "owner",
    }
    request = RequestFactory().post("/accounts/login/")
    for username in ("alice", "eddie", "victor", "gina"):
        assert authenticate(request, username=username, password="demo-pass-123") is not None
    assert Action.objects.filter(tenant__slug="acme", kind="template").count() == 10


def test_the_demo_history_reads_in_order(db: None) -> None:
    """Tenant and operators first, then the custom actions, then the sign-ins that use them."""
    from audit_app.chain import verify_chain
    from audit_app.models import AuditEvent
    from flows_app.models import ActionExecution, FlowRevision
    from flows_app.run_records import settle_tenant

    call_command("seed_demo", stdout=StringIO())
    acme = Tenant.objects.get(slug="acme")
    settle_tenant(acme)
    first_run = ActionExecution.objects.filter(tenant=acme).earliest("occurred_at").occurred_at
    revisions = list(FlowRevision.objects.filter(flow__tenant=acme, flow__slug="login").order_by("number"))
    assert [r.created_at for r in revisions] == sorted(r.created_at for r in revisions)
    assert acme.created_at == revisions[0].created_at < first_run
    events = AuditEvent.objects.for_tenant(acme)
    joined = max(e.occurred_at for e in events.filter(type="member.added"))
    created = [e.occurred_at for e in events.filter(type="action.created")]
    published = [e.occurred_at for e in events.filter(type="flow.action_published")]
    assert len(created) == len(published) == 2
    assert acme.created_at <= joined < min(created) and max(created) < min(published) and max(published) < first_run
    for action in Action.objects.filter(tenant=acme, kind="template"):
        assert action.created_at == acme.created_at and action.versions.earliest("created_at").created_at < first_run
    assert {flow.created_at for flow in acme.flows.filter(is_system=True)} == {acme.created_at}
    for action in Action.objects.filter(tenant=acme, kind="custom"):
        version = action.versions.get()
        assert version.created_at < version.published_at < first_run  # type: ignore[operator]
    assert verify_chain(acme) is None


def test_seed_demo_is_idempotent(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    counts = (
        Tenant.objects.count(),
        Membership.objects.count(),
        get_user_model().objects.count(),
        Action.objects.count(),
    )
    call_command("seed_demo", stdout=StringIO())
    assert counts == (
        Tenant.objects.count(),
        Membership.objects.count(),
        get_user_model().objects.count(),
        Action.objects.count(),
    )


def test_create_api_token_prints_a_working_token_once(client: Any, db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command(
        "create_api_token", "--tenant", "acme", "--name", "ci", "--scopes", "actions:read,flows:read", stdout=out
    )
    secret = out.getvalue().strip()
    assert secret.startswith("acx_")
    token = ApiToken.objects.get(name="ci")
    assert token.scopes == ["actions:read", "flows:read"]
    assert client.get("/api/v1/actions", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_create_api_token_explains_bad_input(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    with pytest.raises(CommandError, match="No tenant"):
        call_command("create_api_token", "--tenant", "nope", "--name", "x", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command(
            "create_api_token", "--tenant", "acme", "--name", "x", "--scopes", "actions:destroy", stdout=StringIO()
        )


def test_migrate_syncs_templates_for_existing_tenants(db: None) -> None:
    from actions_app.services import sync_platform_templates

    call_command("seed_demo", stdout=StringIO())
    acme = Tenant.objects.get(slug="acme")
    Action.objects.filter(tenant=acme, slug="slack-notify").delete()
    assert sync_platform_templates(acme) == 1
    assert sync_platform_templates(acme) == 0
    assert Action.objects.filter(tenant=acme, kind="template").count() == 10


def test_migrate_brings_stored_template_versions_in_line_with_the_release(db: None) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from actions_app.services import sync_platform_templates
    from actions_app.templates_catalog import get_template

    call_command("seed_demo", stdout=StringIO())
    acme = Tenant.objects.get(slug="acme")
    stored = ActionVersion.objects.get(action__tenant=acme, action__slug="decorate-token", version="1.0.0")
    template = get_template("decorate-token")
    assert template is not None
    shipped = template.versions[0]
    # As an earlier release stored it: no namespace rule on the claim.
    older = json.loads(json.dumps(shipped.config_schema))
    del older["properties"]["claim"]["pattern"]
    ActionVersion.objects.filter(pk=stored.pk).update(config_schema=older, checksum="older")

    assert sync_platform_templates(acme) == 0  # nothing created, one version corrected
    stored.refresh_from_db()
    assert stored.config_schema == shipped.config_schema and stored.checksum != "older"
    with pytest.raises(InvalidBindings) as refused:
        attach(acme, "login.pre-token", BindingSpec("decorate-token", "1.0.0", {"claim": "plan", "value": "x"}))
    assert "login.pre-token.0.config.claim" in refused.value.errors
    # In line already: a second sync writes nothing.
    with CaptureQueriesContext(connection) as queries:
        sync_platform_templates(acme)
    assert not [q for q in queries if q["sql"].startswith("UPDATE")]


def test_verify_audit_covers_every_demo_execution(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    output = StringIO()
    call_command("verify_audit", "--tenant", "acme", stdout=output)
    report = output.getvalue()
    assert "acme: OK" in report and "execution records match" in report
    assert "predate digests" not in report


def test_demo_executions_are_numbered_within_their_slot(db: None) -> None:
    from flows_app.models import ActionExecution, Binding

    call_command("seed_demo", stdout=StringIO())
    position_of = dict(Binding.objects.filter(revision__flow__tenant__slug="acme").values_list("key", "position"))
    executions = ActionExecution.objects.filter(tenant__slug="acme").values_list("binding_key", "position", "trigger")
    assert executions
    assert {(str(key), position) for key, position, _ in executions} <= {
        (str(key), position) for key, position in position_of.items()
    }
    # Every slot's first action is #1 (position 0), as in the flow editor.
    assert {trigger for _, position, trigger in executions if position == 0} == {
        "login.pre-credential-check",
        "login.post-auth",
        "login.pre-token",
    }
