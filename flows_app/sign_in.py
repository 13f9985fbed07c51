"""A whole sign-in through a flow: every slot of its kind in order, as one transaction.

Each slot runs through the run engine exactly as the API's trigger calls would, one after the
other with the same transaction id, so the transaction's revision and its `state` carry from slot
to slot the way they do for a real attempt. The attempt ends at the first slot that blocks or
redirects; `demand_mfa` is remembered and the sign-in goes on (the user would answer the MFA
challenge and come back), as within a slot (contract §6).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from actions_app.triggers import FLOW_SLOTS
from flows_app.engine import RunRequest, RunResult, run_flow
from flows_app.models import Flow
from flows_app.slot_outcome import OUTCOME_RANK
from tenants.acting import Acting

ENDING_OUTCOMES = {"block", "redirect"}


@dataclass(frozen=True)
class SlotRun:
    trigger: str
    result: RunResult | None  # None: the sign-in ended before this slot


@dataclass(frozen=True)
class SignInRun:
    transaction_id: str
    flow_revision: int
    slots: list[SlotRun]
    outcome: dict[str, Any]  # kind (and reason / url) of the attempt, with all claims and the final state
    ended_at: str | None  # the slot that blocked or redirected

    @property
    def executions(self) -> int:
        return sum(len(slot.result.executions) for slot in self.slots if slot.result is not None)


def run_sign_in(flow: Flow, attempt: RunRequest, *, acting: Acting) -> SignInRun:
    """Run every slot of `flow` in order for one transaction (`attempt.trigger` is not used)."""
    transaction_id = attempt.transaction_id
    slots: list[SlotRun] = []
    claims: dict[str, Any] = {}
    outcome: dict[str, Any] = {"kind": "continue"}
    ended_at = None
    revision = 0
    for trigger in FLOW_SLOTS[flow.kind]:
        if ended_at is not None:
            slots.append(SlotRun(trigger, None))
            continue
        result = run_flow(
            flow, dataclasses.replace(attempt, trigger=trigger, transaction_id=transaction_id), acting=acting
        )
        # The first slot starts the transaction (a new id unless one was given); the rest join it.
        transaction_id, revision = result.transaction_id, result.flow_revision
        slots.append(SlotRun(trigger, result))
        claims.update(result.outcome.get("claims") or {})
        kind = result.outcome["kind"]
        if OUTCOME_RANK[kind] > OUTCOME_RANK[outcome["kind"]]:
            outcome = {key: value for key, value in result.outcome.items() if key not in ("claims", "state")}
        if kind in ENDING_OUTCOMES:
            ended_at = trigger
    last = next(slot.result for slot in reversed(slots) if slot.result is not None)
    assert transaction_id is not None
    final = {**outcome, "claims": claims, "state": last.outcome.get("state") or {}}
    return SignInRun(transaction_id, revision, slots, final, ended_at)
