"""The attempts log: a batch's tries at a destination as rows written in the commit that settles
them, and how the log is kept bounded."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

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


class Settled(NamedTuple):
    """One event of a claim as settled: its final state and, for a retry, when it is due."""

    item: Claimed
    outcome: Outcome
    state: str
    due_at: float | None


_COUNTED: Final = {"delivered": 0, "retry": 1, "dead": 2, "skipped": 3}


def attempt_rows(
    claim: Claim, settled: Sequence[Settled], sends: Sends | None, now: float
) -> list[tuple[Any, ...]]:
    """The attempts-log rows of a settled claim: one per request and outcome (status and
    reason), with the count of events in each final state. A whole claim of new events that
    ended alike is one row without a list of seqs (its range says which events it holds)."""
    groups: dict[tuple[Any, ...], list[Settled]] = {}
    for entry in settled:
        sent = sends.get(entry.item.seq) if sends is not None else None
        key = (sent, entry.outcome.status, entry.outcome.reason)
        groups.setdefault(key, []).append(entry)
    rows: list[tuple[Any, ...]] = []
    whole = len(groups) == 1 and len(settled) == len(claim.items) and not claim.is_retry
    for (sent, status, reason), entries in groups.items():
        counts = [0, 0, 0, 0]
        for entry in entries:
            counts[_COUNTED[entry.state]] += 1
        seqs = [entry.item.seq for entry in entries]
        due = [entry.due_at for entry in entries if entry.due_at is not None]
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
                *counts,
                reason,
                _answer(entries),
                min(due) if due else None,
            )
        )
    return rows


def _answer(entries: Sequence[Settled]) -> str | None:
    """The platform's answer of a group, scrubbed of every identity value of its events (one
    answer can echo any of them) and truncated; None when the platform said nothing."""
    detail = next((e.outcome.detail for e in entries if e.outcome.detail), "")
    if not detail:
        return None
    known: set[str] = set()
    for entry in entries:
        known |= identity_values(orjson.loads(entry.item.body))
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
