"""How the executions of one slot combine into the slot's outcome (contract §6), apart from
running them and recording what they did (flows_app.engine).

Bindings run in position order. A `continue` merges its `state`, which is passed on to the next
binding, and its `claims` (later wins); `block` or `redirect` ends the slot; `demand_mfa` is
remembered and the chain goes on. The slot's outcome ranks block > redirect > demand_mfa >
continue. An execution that failed counts as its binding's on_error says: `block` (the default,
fail closed) or `continue`, which passes over it as if the binding were not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actions_app.runtime import ExecutionError
from actions_app.runtime.protocol import clip_error_message
from actions_app.runtime.results import MAX_REASON_CHARS
from flows_app.models import OnError

OUTCOME_RANK = {"continue": 0, "demand_mfa": 1, "redirect": 2, "block": 3}


def counted_result(
    result: dict[str, Any] | None, error: ExecutionError | None, *, action_slug: str, on_error: str
) -> dict[str, Any] | None:
    """What one execution counts as in its slot's outcome: its result, or for a failed execution
    a block (on_error `block`) or nothing at all (on_error `continue`)."""
    if error is None:
        return result
    if on_error != OnError.BLOCK:
        return None
    # The runtime already keeps messages short; a reason is never longer than one an action may
    # return itself.
    return {"kind": "block", "reason": clip_error_message(f"{action_slug} failed: {error.message}", MAX_REASON_CHARS)}


def fold_slot_outcome(state: dict[str, Any], counted: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    """The slot's outcome from its executions' counted results in position order: the deciding
    result with the merged `claims` and the `state` the slot leaves.

    `state` (the transaction's state as the slot found it) is merged into in place, and `counted`
    is read one result at a time, never past a block or redirect: the engine passes a generator
    that runs each binding only when asked, so every binding sees the state the ones before it
    left and none runs after the slot has ended."""
    claims: dict[str, Any] = {}
    final: dict[str, Any] = {"kind": "continue"}
    for result in counted:
        if result is None:
            continue
        kind = result["kind"]
        if kind == "continue":
            state.update(result.get("state") or {})
            claims.update(result.get("claims") or {})
        elif kind == "demand_mfa":
            if OUTCOME_RANK[final["kind"]] < OUTCOME_RANK["demand_mfa"]:
                final = dict(result)
        else:  # block or redirect end the slot
            final = dict(result)
            break
    return {**final, "claims": claims, "state": state}
