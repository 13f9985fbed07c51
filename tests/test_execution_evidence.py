"""What an investigation reads of one execution: the binding config it ran with, its revision and
slot position, and the links between the execution, its audit event, its replay and its trace."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from audit_app.models import AuditEvent
from flows_app.models import ActionExecution
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.factories import region
from tests.flow_helpers import attach, custom_action, run

POST_AUTH = "login.post-auth"
HOOK = {"url": "https://hooks.example.com/in", "secret": "evidence-secret-0123456789"}


@pytest.fixture
def recorded(personas: Any) -> ActionExecution:
    """A real run: block-by-risk-score at threshold 80, then webhook-emit with a secret."""
    attach(
        personas.tenant_a,
        POST_AUTH,
        BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}, on_error="continue", timeout_ms=750),
        BindingSpec("webhook-emit", "1.0.0", HOOK),
    )
    result = run(personas.tenant_a, POST_AUTH, risk=10)
    settle_tenant(personas.tenant_a)
    return ActionExecution.objects.get(transaction_id=result.transaction_id, position=1)


def _event_of(execution: ActionExecution) -> AuditEvent:
    return AuditEvent.objects.get(
        type="flow.action_executed", transaction_id=execution.transaction_id, action_slug=execution.action.slug
    )


def test_an_execution_shows_the_binding_config_it_ran_with(
    client: Any, personas: Any, recorded: ActionExecution
) -> None:
    client.force_login(personas.viewer)
    page = client.get(f"/t/acme/actions/webhook-emit/runs/{recorded.pk}/").content.decode()
    config = region(page, "binding-config", "</section>")
    assert "config.url" in config and "https://hooks.example.com/in" in config
    assert "config.secret" in config and HOOK["secret"] not in page  # masked, never shown
    assert "Timeout</th><td>1000 ms" in config and "<code>block</code>" in config
    # The revision and the slot position, the revision linked to what it changed.
    revision = recorded.revision_number
    assert f'href="/t/acme/flows/login/revisions/diff/?to={revision}"' in page
    assert f"<code>{POST_AUTH}</code>, #2 in the slot" in page
    assert f'href="/t/acme/flows/login/transactions/{recorded.transaction_id}/"' in page
    assert f'href="/t/acme/audit/{_event_of(recorded).pk}/"' in page  # and back to its audit event


def test_an_executions_on_error_and_timeout_come_from_its_binding(
    client: Any, personas: Any, recorded: ActionExecution
) -> None:
    first = ActionExecution.objects.get(transaction_id=recorded.transaction_id, position=0)
    client.force_login(personas.viewer)
    page = client.get(f"/t/acme/actions/block-by-risk-score/runs/{first.pk}/").content.decode()
    assert "Timeout</th><td>750 ms" in page and "<code>continue</code>" in page
    assert "config.threshold" in page and "<code>80</code>" in page


def test_the_run_event_links_to_its_execution_and_its_trace(client: Any, personas: Any) -> None:
    custom_action(personas.tenant_a, "risk-gate", "return { kind: 'continue' };", [POST_AUTH])
    attach(personas.tenant_a, POST_AUTH, BindingSpec("risk-gate", "0.1.0"))
    transaction_id = run(personas.tenant_a, POST_AUTH).transaction_id
    settle_tenant(personas.tenant_a)
    execution = ActionExecution.objects.get(transaction_id=transaction_id)
    event = _event_of(execution)
    client.force_login(personas.viewer)
    page = client.get(f"/t/acme/audit/{event.pk}/").content.decode()
    assert f'href="/t/acme/actions/risk-gate/runs/{execution.pk}/"' in page
    assert f'href="/t/acme/actions/risk-gate/?replay={execution.pk}#harness"' in page
    assert f'href="/t/acme/flows/login/transactions/{transaction_id}/"' in page
    assert f"?q={transaction_id}" not in page  # the id leads to the trace, not to a search
    # The audit log's row of the run leads to the same places.
    log = client.get("/t/acme/audit/", {"type": "flow.action_executed"}).content.decode()
    assert f'href="/t/acme/actions/risk-gate/runs/{execution.pk}/"' in log
    assert f'href="/t/acme/flows/login/transactions/{transaction_id}/"' in log


def test_two_runs_of_one_action_in_a_slot_link_to_their_own_executions(
    client: Any, personas: Any, recorded: ActionExecution
) -> None:
    twice = [BindingSpec("webhook-emit", "1.0.0", HOOK), BindingSpec("webhook-emit", "1.0.0", HOOK)]
    attach(personas.tenant_a, POST_AUTH, *twice)
    transaction_id = run(personas.tenant_a, POST_AUTH).transaction_id
    settle_tenant(personas.tenant_a)
    executions = ActionExecution.objects.filter(transaction_id=transaction_id).order_by("position")
    events = AuditEvent.objects.filter(transaction_id=transaction_id).order_by("id")
    client.force_login(personas.viewer)
    linked = set()
    for event in events:
        page = client.get(f"/t/acme/audit/{event.pk}/").content.decode()
        linked |= {e.pk for e in executions if f"/runs/{e.pk}/" in page}
    assert linked == {e.pk for e in executions}


def test_the_audit_log_finds_executions_in_one_query_per_page(
    client: Any, personas: Any, django_assert_max_num_queries: Any
) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}))
    client.force_login(personas.viewer)

    def count_queries() -> int:
        settle_tenant(personas.tenant_a)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get("/t/acme/audit/", {"type": "flow.action_executed"}).status_code == 200
        return len(captured)

    run(personas.tenant_a, POST_AUTH)
    few = count_queries()
    for _ in range(60):
        run(personas.tenant_a, POST_AUTH)
    assert count_queries() == few


def test_an_event_whose_action_was_deleted_names_its_execution_without_a_link(
    client: Any, personas: Any, recorded: ActionExecution
) -> None:
    from django.utils import timezone

    from actions_app.models import Action

    event = _event_of(recorded)
    client.force_login(personas.viewer)
    assert f"/runs/{recorded.pk}/" in client.get(f"/t/acme/audit/{event.pk}/").content.decode()
    Action.all_objects.filter(pk=recorded.action_id).update(deleted_at=timezone.now())
    page = client.get(f"/t/acme/audit/{event.pk}/").content.decode()
    assert f"/runs/{recorded.pk}/" not in page and "has been deleted" in page


def test_a_transaction_id_with_a_slash_still_has_a_trace(client: Any, personas: Any) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}))
    run(personas.tenant_a, POST_AUTH, transaction_id="sso/42?x#y")
    settle_tenant(personas.tenant_a)
    execution = ActionExecution.objects.get(transaction_id="sso/42?x#y")
    client.force_login(personas.viewer)
    detail = client.get(f"/t/acme/actions/block-by-risk-score/runs/{execution.pk}/")
    assert detail.status_code == 200
    trace_url = "/t/acme/flows/login/transactions/sso/42%3Fx%23y/"
    assert f'href="{trace_url}"' in detail.content.decode()
    assert client.get(trace_url).status_code == 200


@pytest.mark.parametrize("execution_id", ["99999999999999999999999999", "0", "١٢", "abc"])
def test_an_execution_id_that_is_no_number_or_too_big_is_404(
    client: Any, personas: Any, recorded: ActionExecution, execution_id: str
) -> None:
    client.force_login(personas.viewer)
    assert client.get(f"/t/acme/actions/webhook-emit/runs/{execution_id}/").status_code == 404


def test_the_delivery_log_links_transactions_to_their_trace(
    client: Any, personas: Any, recorded: ActionExecution
) -> None:
    client.force_login(personas.viewer)
    key = recorded.binding_key.hex
    page = client.get(f"/t/acme/flows/login/deliveries/{key}/").content.decode()
    assert f'href="/t/acme/flows/login/transactions/{recorded.transaction_id}/"' in page


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's column types refuse the value")
@pytest.mark.parametrize("value", ["'[unclosed'", "CAST(x'61ff62' AS TEXT)"], ids=["bad-json", "invalid-utf8"])
def test_an_unreadable_execution_leaves_the_audit_log_readable_without_its_link(
    client: Any, personas: Any, recorded: ActionExecution, value: str
) -> None:
    event = _event_of(recorded)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA ignore_check_constraints = ON")
        cursor.execute(f"UPDATE flows_app_actionexecution SET logs = {value} WHERE id = %s", [recorded.pk])
        cursor.execute("PRAGMA ignore_check_constraints = OFF")
    client.force_login(personas.viewer)
    log = client.get("/t/acme/audit/", {"type": "flow.action_executed"})
    assert log.status_code == 200 and f"/runs/{recorded.pk}/" not in log.content.decode()
    detail = client.get(f"/t/acme/audit/{event.pk}/")
    assert detail.status_code == 200 and "not found" in detail.content.decode()
