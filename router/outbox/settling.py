"""What a settlement writes, worked out once for both backends: each event's final state,
its retry or dead-letter row, and the attempts log's rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import attrs
import orjson

from router.destination import Outcome
from router.outbox.attempts_log import Sends, attempt_rows
from router.outbox.base import Claim, Claimed
from router.outbox.policy import RetryPolicy
from router.privacy import identity_values, scrub

#: How much of a platform's answer a dead letter or retry row keeps (after scrubbing).
MAX_DETAIL: Final = 2048


@attrs.frozen
class Plan:
    """A settled claim's writes: ``upserts`` are deliveries rows (store, destination, seq,
    state, attempts, first_attempt_at, due_at, reason, last_status, detail, updated_at);
    ``deletes`` the (store, destination, seq) of retries that are done."""

    states: list[str]
    upserts: list[tuple[Any, ...]]
    deletes: list[tuple[str, str, int]]
    attempts: list[tuple[Any, ...]]

    def retrying_change(self, is_retry: bool) -> int:
        """How many more (or fewer) of the destination's events wait as retries."""
        if is_retry:
            return -sum(state != "retry" for state in self.states)
        return self.states.count("retry")


def plan(
    claim: Claim,
    outcomes: Sequence[tuple[Claimed, Outcome]],
    policy: RetryPolicy,
    sends: Sends | None,
    now: float,
) -> Plan:
    """Decide every event's final state and the rows that record it."""
    upserts: list[tuple[Any, ...]] = []
    deletes: list[tuple[str, str, int]] = []
    states: list[str] = []
    due: dict[int, float] = {}
    for item, outcome in outcomes:
        row = _row(claim, item, outcome, policy, now)
        if row is None:
            states.append("skipped" if outcome.kind == "skipped" else "delivered")
            if claim.is_retry:
                deletes.append((claim.store, claim.destination, item.seq))
        else:
            states.append(row[3])
            upserts.append(row)
            if row[6] is not None:
                due[item.seq] = row[6]
    attempts = attempt_rows(claim, outcomes, states, due, sends or {}, now) if outcomes else []
    return Plan(states, upserts, deletes, attempts)


def _row(
    claim: Claim, item: Claimed, outcome: Outcome, policy: RetryPolicy, now: float
) -> tuple[Any, ...] | None:
    if outcome.kind == "delivered" or outcome.kind == "skipped":
        return None
    attempts = policy.attempts_after(item.attempts, outcome)
    first = item.first_attempt_at if item.first_attempt_at is not None else now
    state, due_at, reason = "dead", None, outcome.reason
    if outcome.kind == "retry":
        decision = policy.decide(
            attempts=attempts,
            received_at=item.received_at,
            now=now,
            retry_after=outcome.retry_after,
            event_delay=outcome.event_delay,
        )
        if decision.due_at is not None:
            state, due_at = "retry", decision.due_at
        else:
            reason = f"{outcome.reason}: {decision.reason}"
    known = identity_values(orjson.loads(item.body)) if outcome.detail else ()
    detail = scrub(outcome.detail, known)[:MAX_DETAIL]
    return (
        claim.store,
        claim.destination,
        item.seq,
        state,
        attempts,
        first,
        due_at,
        reason,
        outcome.status,
        detail,
        now,
    )
