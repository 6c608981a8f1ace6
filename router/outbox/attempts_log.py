"""The attempts log: a batch's tries at a destination as rows written in the commit that settles
them, and how the log is kept bounded."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from router.destination import Outcome
from router.outbox.base import Claim, Claimed
from router.privacy import identity_values, scrub

#: How much of a platform's answer a row keeps (after scrubbing).
MAX_ANSWER: Final = 500
#: Rows deleted per maintenance round at most, so one purge never holds the writer long.
PURGE_STEP: Final = 50_000

INSERT_ATTEMPT: Final = (
    "INSERT INTO attempts (store, destination, at, seq_lo, seq_hi, seqs, status, latency_ms,"
    " delivered, retrying, dead, skipped, reason, answer, next_retry_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: When a sent event's request went out (Unix seconds) and how long it took (seconds), by seq.
Sends = Mapping[int, tuple[float, float]]


#: The final states an attempts row counts, in its column order.
_STATES: Final = ("delivered", "retry", "dead", "skipped")


def attempt_rows(
    claim: Claim,
    outcomes: Sequence[tuple[Claimed, Outcome]],
    states: Sequence[str],
    due: Mapping[int, float],
    sends: Sends,
    now: float,
) -> list[tuple[Any, ...]]:
    """The attempts-log rows of a settled claim: one per request and outcome (status and
    reason), with the count of events in each final state; ``due`` holds the retries' due
    times by seq. A whole claim of new events that ended alike is one row without a list of
    seqs (its range says which events it holds)."""
    rows: list[tuple[Any, ...]] = []
    groups = _groups(outcomes, sends)
    whole = len(groups) == 1 and len(outcomes) == len(claim.items) and not claim.is_retry
    for (sent, status, reason), indexes in groups.items():
        every = len(indexes) == len(outcomes)
        picked = states if every else [states[i] for i in indexes]
        seqs = [outcomes[i][0].seq for i in indexes]
        dues = [due[seq] for seq in seqs if seq in due] if due else []
        rows.append(
            (
                claim.store,
                claim.destination,
                now if sent is None else sent[0],
                min(seqs),
                max(seqs),
                None if whole else ",".join(map(str, sorted(seqs))),
                status,
                None if sent is None else sent[1] * 1000.0,
                *(picked.count(state) for state in _STATES),
                reason,
                _answer(outcomes, indexes),
                min(dues) if dues else None,
            )
        )
    return rows


def _groups(
    outcomes: Sequence[tuple[Claimed, Outcome]], sends: Sends
) -> dict[tuple[Any, ...], Sequence[int]]:
    """The indexes of ``outcomes`` by (request, status, reason)."""
    get = sends.get
    first_item, first = outcomes[0]
    sent = get(first_item.seq)
    # the usual case, checked cheaply: one request, one outcome object for every event
    if all(o is first for _, o in outcomes) and all(get(i.seq) is sent for i, _ in outcomes):
        return {(sent, first.status, first.reason): range(len(outcomes))}
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, (item, outcome) in enumerate(outcomes):
        groups.setdefault((get(item.seq), outcome.status, outcome.reason), []).append(index)
    return dict(groups)


def _answer(outcomes: Sequence[tuple[Claimed, Outcome]], indexes: Sequence[int]) -> str | None:
    """The platform's answer of a group, scrubbed of every identity value of its events (one
    answer can echo any of them) and truncated; None when the platform said nothing."""
    if isinstance(indexes, range) and not outcomes[0][1].detail:
        return None  # one outcome object for the whole group (see _groups), without detail
    detail = next((outcomes[i][1].detail for i in indexes if outcomes[i][1].detail), "")
    if not detail:
        return None
    known: set[str] = set()
    for i in indexes:
        known |= identity_values(orjson.loads(outcomes[i][0].body))
    return scrub(detail[: MAX_ANSWER * 4], known)[:MAX_ANSWER]


def purge_attempts(db: sqlite3.Connection, before: float, max_rows: int) -> int:
    """Delete rows older than ``before`` and the oldest beyond ``max_rows``, at most
    :data:`PURGE_STEP` per call; return how many. Ids grow with time, so both are id ranges."""
    first, last = db.execute("SELECT min(id), max(id) FROM attempts").fetchone()
    if first is None:
        return 0
    step_end = first + PURGE_STEP
    young = db.execute(
        "SELECT id FROM attempts WHERE id >= ? AND id < ? AND at >= ? ORDER BY id LIMIT 1",
        (first, step_end, before),
    ).fetchone()
    # rows are appended in time order: the first young row ends the old ones (a scan of at
    # most PURGE_STEP rows; none young among them: they all go)
    keep_from = max(young[0] if young else step_end, last - max_rows + 1)
    keep_from = min(keep_from, step_end)
    cursor = db.execute("DELETE FROM attempts WHERE id < ?", (keep_from,))
    return int(cursor.rowcount)
