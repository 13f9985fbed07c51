"""An action's long error text is cut where a run shows and stores it, keeping where it was thrown."""

from __future__ import annotations

import re
from typing import Any

from flows_app.models import ActionExecution
from flows_app.run_records import settle_tenant
from flows_app.services import BindingSpec
from tests.flow_helpers import attach, custom_action, run

POST_AUTH = "login.post-auth"
LOCATION_AT_END = re.compile(r"\(line \d+, column \d+\)$")


def test_a_long_thrown_message_is_cut_keeping_its_line_in_the_reason_and_the_record(personas: Any) -> None:
    # The slug is long, so the reason "<slug> failed: <message>" would pass 1,000 characters.
    slug = "a-very-long-action-slug-" + "x" * 56
    custom_action(personas.tenant_a, slug, 'throw new Error("boom ".repeat(5000));', [POST_AUTH])
    attach(personas.tenant_a, POST_AUTH, BindingSpec(slug, "0.1.0"))

    outcome = run(personas.tenant_a, POST_AUTH).outcome
    assert outcome["kind"] == "block"
    assert len(outcome["reason"]) <= 1000 and outcome["reason"].startswith(f"{slug} failed: Uncaught Error: boom")
    assert LOCATION_AT_END.search(outcome["reason"])

    settle_tenant(personas.tenant_a)
    stored = ActionExecution.objects.get(action__slug=slug)
    assert len(stored.error_message) <= 500 and LOCATION_AT_END.search(stored.error_message)
