"""Replay of a platform template's execution: it starts from the recorded version, config and
input, runs another version or another config beside the recorded result, and touches nothing
live (no record, no rate-limit counter, no webhook). A custom action's replay starts from the
recorded version and config too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flows_app.models import ActionExecution, WebhookDelivery
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.factories import region
from tests.flow_helpers import attach, custom_action, run

POST_AUTH = "login.post-auth"
PRE_AUTH = "login.pre-credential-check"
HOOK = {"url": "https://hooks.example.com/in", "secret": "replay-secret-0123456789"}


def _recorded(personas: Any, trigger: str, *specs: BindingSpec, **run_args: Any) -> list[ActionExecution]:
    attach(personas.tenant_a, trigger, *specs)
    transaction_id = run(personas.tenant_a, trigger, **run_args).transaction_id
    settle_tenant(personas.tenant_a)
    return list(ActionExecution.objects.filter(transaction_id=transaction_id).order_by("position"))


@pytest.fixture
def risk_run(personas: Any) -> ActionExecution:
    """block-by-risk-score at threshold 80 let a sign-in of risk 30 through."""
    (execution,) = _recorded(
        personas, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 80}), risk=30
    )
    assert execution.outcome == "continue"
    return execution


def _url(execution: ActionExecution) -> str:
    return f"/t/acme/actions/{execution.action.slug}/runs/{execution.pk}/replay/"


def _risk_form(execution: ActionExecution, threshold: str = "80", **fields: str) -> dict[str, str]:
    """What the replay form of block-by-risk-score posts: the recorded input, version 1.0.0."""
    return {
        "version": "1.0.0",
        "input": json.dumps(execution.masked_input),
        "replay-config-threshold": threshold,
        **fields,
    }


def test_a_template_execution_offers_a_replay(client: Any, personas: Any, risk_run: ActionExecution) -> None:
    client.force_login(personas.viewer)
    page = client.get(f"/t/acme/actions/block-by-risk-score/runs/{risk_run.pk}/").content.decode()
    assert f'href="{_url(risk_run)}"' in page and "Replay this execution" in page


def test_the_replay_starts_from_the_recorded_version_config_and_input(
    client: Any, personas: Any, risk_run: ActionExecution
) -> None:
    client.force_login(personas.editor)
    response = client.get(_url(risk_run))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<option value="1.0.0" selected>1.0.0 (published) — recorded</option>' in page
    assert 'name="replay-config-threshold"' in page and 'value="80"' in page
    recorded_input = json.loads(response.context["form"]["input"].value())
    assert recorded_input["user"]["email"] == "jane@example.com" and recorded_input["context"]["risk"]["score"] == 30
    assert "config" not in recorded_input["context"]  # the config is the form's
    assert "Recorded: version 1.0.0" in page and "Press Run" in page


def test_replaying_with_the_recorded_config_gives_the_recorded_outcome(
    client: Any, personas: Any, risk_run: ActionExecution
) -> None:
    client.force_login(personas.editor)
    response = client.post(_url(risk_run), _risk_form(risk_run))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This run: version 1.0.0" in page
    assert "Same outcome, result and console output as the recorded run." in page
    assert ActionExecution.objects.count() == 1  # a replay records nothing


def test_replaying_with_another_config_shows_the_difference(
    client: Any, personas: Any, risk_run: ActionExecution
) -> None:
    client.force_login(personas.editor)
    response = client.post(_url(risk_run), _risk_form(risk_run, "10"))
    page = response.content.decode()
    assert "Outcome changed: continue → block" in page
    new = page[page.index('id="replay-new"') :]
    assert ">block</span>" in new


def test_a_rate_limit_replays_on_another_version_without_touching_live_counters(client: Any, personas: Any) -> None:
    config = {"limit": 1, "window_seconds": 600, "message": "slow down"}
    (first,) = _recorded(personas, PRE_AUTH, BindingSpec("rate-limit-by-ip", "1.0.0", config))
    client.force_login(personas.editor)
    data = {
        "version": "1.1.0",
        "input": json.dumps(first.masked_input),
        "replay-config-limit": "1",
        "replay-config-window_seconds": "600",
        "replay-config-message": "slow down",
    }
    for _ in range(3):
        page = client.post(_url(first), data).content.decode()
        assert "This run: version 1.1.0" in page and "Same outcome" in page  # fresh counters each time
    # Live traffic's counter saw only its own run: the second live sign-in is the one blocked.
    transaction_id = run(personas.tenant_a, PRE_AUTH).transaction_id
    settle_tenant(personas.tenant_a)
    assert ActionExecution.objects.get(transaction_id=transaction_id).outcome == "block"


def test_a_secret_left_blank_replays_with_the_bindings_stored_secret_and_sends_nothing(
    client: Any, personas: Any
) -> None:
    (hook,) = _recorded(personas, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", HOOK))
    WebhookDelivery.objects.all().delete()
    client.force_login(personas.editor)
    opened = client.get(_url(hook)).content.decode()
    assert HOOK["secret"] not in opened and "Stored — leave blank to keep." in opened
    response = client.post(
        _url(hook), {"version": "1.0.0", "input": json.dumps(hook.masked_input), "replay-config-url": HOOK["url"]}
    )
    page = response.content.decode()
    assert response.status_code == 200, page
    assert "Would send 1 webhook (to hooks.example.com); a replay sends none." in page
    assert HOOK["secret"] not in page
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("fields", "label", "message"),
    [
        ({"input": "{not json"}, "Input (JSON)", "line 1"),
        ({"input": "[]"}, "Input (JSON)", "must be a JSON object"),
        ({"input": ""}, "Input (JSON)", "This field is required."),
        ({"input": "x" * 70000}, "Input (JSON)", "at most 65536 characters"),
        ({"version": "9.9.9"}, "Version", "Select a valid choice. 9.9.9 is not one of the available choices."),
        ({"replay-config-threshold": "ten"}, "Config", "fix the errors shown next to its settings"),
        ({"replay-config-threshold": "99999999999999999999999"}, "Config", "fix the errors"),
    ],
)
def test_bad_replay_input_is_refused_naming_the_field_and_kept(
    client: Any, personas: Any, risk_run: ActionExecution, fields: dict[str, str], label: str, message: str
) -> None:
    client.force_login(personas.editor)
    response = client.post(_url(risk_run), _risk_form(risk_run, **fields))
    assert response.status_code == 400
    page = response.content.decode()
    summary = region(page, "replay-errors", "</div>")
    assert label in summary and (message in summary or message in page)
    assert "This run: version" not in page  # nothing ran
    if "input" in fields and len(fields["input"]) < 100:
        assert fields["input"].replace('"', "&quot;") in page  # what was typed stays


def test_an_input_for_a_slot_the_version_cannot_run_in_names_the_version(
    client: Any, personas: Any, risk_run: ActionExecution
) -> None:
    client.force_login(personas.editor)
    moved = {**risk_run.masked_input, "trigger": "login.pre-token"}
    data = {"version": "1.0.0", "input": json.dumps(moved), "replay-config-threshold": "80"}
    response = client.post(_url(risk_run), data)
    assert response.status_code == 400
    assert "1.0.0 cannot run in login.pre-token" in response.content.decode()


def test_who_may_replay(client: Any, personas: Any, risk_run: ActionExecution) -> None:
    data = _risk_form(risk_run)
    client.force_login(personas.viewer)
    opened = client.get(_url(risk_run))
    assert opened.status_code == 200 and "Your role cannot run actions" in opened.content.decode()
    assert client.post(_url(risk_run), data).status_code == 403
    client.force_login(personas.outsider)
    assert client.get(_url(risk_run)).status_code == 404
    assert client.post(_url(risk_run), data).status_code == 404
    # An execution of another action, or an id that is no id, is no replay.
    client.force_login(personas.editor)
    assert client.get(f"/t/acme/actions/rate-limit-by-ip/runs/{risk_run.pk}/replay/").status_code == 404
    assert client.get("/t/acme/actions/block-by-risk-score/runs/9999999999999999999999/replay/").status_code == 404


def test_a_custom_actions_replay_starts_from_the_recorded_version_and_config(client: Any, personas: Any) -> None:
    schema = {"type": "object", "properties": {"threshold": {"type": "integer", "title": "Threshold"}}}
    custom_action(personas.tenant_a, "risk-gate", "return { kind: 'continue' };", [POST_AUTH], schema=schema)
    (execution,) = _recorded(personas, POST_AUTH, BindingSpec("risk-gate", "0.1.0", {"threshold": 42}))
    client.force_login(personas.editor)
    replay_url = f"/t/acme/actions/risk-gate/runs/{execution.pk}/replay/"
    assert client.get(replay_url)["Location"] == f"/t/acme/actions/risk-gate/?replay={execution.pk}#harness"
    response = client.get(f"/t/acme/actions/risk-gate/?replay={execution.pk}")
    assert response.context["harness_target"] == "0.1.0"
    harness = response.content.decode().split('id="harness"', 1)[1]
    assert '<option value="0.1.0" selected>' in harness
    assert 'name="test-config-threshold"' in harness and 'value="42"' in harness


def test_a_version_in_the_link_that_does_not_exist_is_named(
    client: Any, personas: Any, risk_run: ActionExecution
) -> None:
    client.force_login(personas.editor)
    response = client.get(_url(risk_run), {"version": "7.7.7"})
    assert response.status_code == 400
    assert "No version &#x27;7.7.7&#x27; of block-by-risk-score; showing 1.0.0." in response.content.decode()
    # A recorded version the platform no longer ships is said too (and the newest is shown).
    ActionExecution.objects.filter(pk=risk_run.pk).update(action_version="0.9.0")
    page = client.get(_url(risk_run))
    assert page.status_code == 200
    assert "Version 0.9.0 is no longer shipped; showing 1.0.0." in page.content.decode()
