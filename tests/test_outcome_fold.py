"""The slot's outcome (contract §6) folded from results alone: no flow, no sandbox, no database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actions_app.runtime import ExecutionError
from actions_app.runtime.results import MAX_REASON_CHARS
from flows_app.slot_outcome import counted_result, fold_slot_outcome

CONTINUE: dict[str, Any] = {"kind": "continue"}


def test_an_empty_slot_continues_with_the_state_it_found() -> None:
    assert fold_slot_outcome({"seen": 1}, []) == {"kind": "continue", "claims": {}, "state": {"seen": 1}}


def test_claims_and_state_merge_later_wins() -> None:
    state = {"kept": True, "step": 0}
    outcome = fold_slot_outcome(
        state,
        [
            {"kind": "continue", "claims": {"app/tier": "free", "app/a": 1}, "state": {"step": 1}},
            {"kind": "continue", "claims": {"app/tier": "gold"}, "state": {"step": 2}},
        ],
    )
    assert outcome == {
        "kind": "continue",
        "claims": {"app/tier": "gold", "app/a": 1},
        "state": {"kept": True, "step": 2},
    }
    assert state == outcome["state"]  # merged in place: the transaction's state the slot leaves


def test_each_result_is_asked_for_after_the_state_before_it_is_merged() -> None:
    state: dict[str, Any] = {}
    seen: list[dict[str, Any]] = []

    def bindings() -> Iterator[dict[str, Any]]:
        for step in (1, 2, 3):
            seen.append(dict(state))
            yield {"kind": "continue", "state": {"step": step}}

    fold_slot_outcome(state, bindings())
    assert seen == [{}, {"step": 1}, {"step": 2}]


def test_a_block_ends_the_slot_and_later_bindings_never_run() -> None:
    results: Iterator[dict[str, Any]] = iter(
        [
            {"kind": "continue", "claims": {"app/a": 1}},
            {"kind": "block", "reason": "risky"},
            {"kind": "continue", "claims": {"app/b": 2}},
        ]
    )
    outcome = fold_slot_outcome({}, results)
    assert outcome == {"kind": "block", "reason": "risky", "claims": {"app/a": 1}, "state": {}}
    assert next(results) == {"kind": "continue", "claims": {"app/b": 2}}  # never read


def test_a_redirect_ends_the_slot_too() -> None:
    results: Iterator[dict[str, Any]] = iter(
        [{"kind": "redirect", "url": "https://staff.example.com/"}, {"kind": "block", "reason": "x"}]
    )
    outcome = fold_slot_outcome({}, results)
    assert outcome["kind"] == "redirect" and outcome["url"] == "https://staff.example.com/"
    assert next(results)["kind"] == "block"  # never read


def test_demand_mfa_is_remembered_and_the_chain_goes_on() -> None:
    outcome = fold_slot_outcome(
        {}, [{"kind": "demand_mfa"}, {"kind": "continue", "claims": {"app/after": True}}, CONTINUE]
    )
    assert outcome == {"kind": "demand_mfa", "claims": {"app/after": True}, "state": {}}


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        ({"kind": "redirect", "url": "https://staff.example.com/"}, "redirect"),
        ({"kind": "block", "reason": "risky"}, "block"),
    ],
)
def test_a_later_redirect_or_block_outranks_demand_mfa(ending: dict[str, Any], expected: str) -> None:
    outcome = fold_slot_outcome({}, [{"kind": "demand_mfa"}, ending])
    assert outcome["kind"] == expected
    assert outcome == {**ending, "claims": {}, "state": {}}


def test_a_result_is_copied_not_taken_over() -> None:
    block = {"kind": "block", "reason": "risky"}
    fold_slot_outcome({}, [block])
    assert block == {"kind": "block", "reason": "risky"}


def test_a_result_without_error_counts_as_itself() -> None:
    result = {"kind": "continue", "claims": {"app/a": 1}}
    assert counted_result(result, None, action_slug="tag", on_error="block") is result


def test_a_failure_with_on_error_block_fails_closed() -> None:
    failed = ExecutionError("timeout", "Timed out after 1000 ms.")
    counted = counted_result(None, failed, action_slug="slow", on_error="block")
    assert counted == {"kind": "block", "reason": "slow failed: Timed out after 1000 ms."}
    outcome = fold_slot_outcome({}, [counted, {"kind": "continue", "claims": {"app/late": 1}}])
    assert outcome["kind"] == "block" and outcome["claims"] == {}


def test_a_failure_with_on_error_continue_is_passed_over() -> None:
    failed = ExecutionError("exception", "boom")
    counted = counted_result(None, failed, action_slug="flaky", on_error="continue")
    assert counted is None
    outcome = fold_slot_outcome({}, [counted, {"kind": "continue", "claims": {"app/after": 1}}])
    assert outcome == {"kind": "continue", "claims": {"app/after": 1}, "state": {}}


def test_a_failure_reason_is_never_longer_than_an_action_may_return() -> None:
    failed = ExecutionError("exception", "x" * 5000)
    counted = counted_result(None, failed, action_slug="chatty", on_error="block")
    assert counted is not None and len(counted["reason"]) <= MAX_REASON_CHARS
