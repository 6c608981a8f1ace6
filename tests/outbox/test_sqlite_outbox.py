"""The outbox keeps its promise on both backends (SQLite and PostgreSQL: see conftest.py):
durable appends, claims, settlements, cursors, replay."""

from __future__ import annotations

import asyncio
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from router import codec
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.recount import PENDING_BETWEEN
from router.outbox.sqlite import _NEXT_EVENTS
from router.outbox.writer import MAX_ROWS_PER_COMMIT
from router.testing.events import make_event
from tests.outbox.conftest import Query, Reopen

NO_JITTER = RetryPolicy(max_attempts=3, jitter=lambda top: top)


def new(event_id: str, routes: tuple[str, ...] = ("hook",), store: str = "shop") -> NewEvent:
    body = codec.encode(make_event(event_id=event_id, store=store))
    return NewEvent(store, event_id, 1_800_000_000.0, routes, body)


async def test_append_is_durable_and_idempotent(outbox: Any, query: Query) -> None:
    """An appended event is on disk once, however often the same event_id is appended."""
    await outbox.append([new("a"), new("b")])
    await outbox.append([new("a")])
    rows = await query("SELECT event_id FROM events ORDER BY seq")
    assert rows == [("a",), ("b",)]


async def test_concurrent_appends_beyond_one_commit_all_land_once(
    outbox: Any, query: Query
) -> None:
    """Appends queued together are split into commits of at most MAX_ROWS_PER_COMMIT rows
    (one INSERT each, within SQLite's parameter limit); every event lands once, in order."""
    body = codec.encode(make_event(event_id="x"))
    total = 2 * MAX_ROWS_PER_COMMIT + 7
    batches = [
        [NewEvent("shop", f"e{i:05d}", 1.0, ("hook",), body) for i in range(start, start + 500)]
        for start in range(0, total - 7, 500)
    ] + [[NewEvent("shop", f"e{i:05d}", 1.0, ("hook",), body) for i in range(total - 7, total)]]
    batches.append(batches[0][:3])  # a retry queued in the same group: nothing new
    await asyncio.gather(*(outbox.append(batch) for batch in batches))
    ids = [row[0] for row in await query("SELECT event_id FROM events ORDER BY seq")]
    assert ids == [f"e{i:05d}" for i in range(total)]


async def test_one_append_larger_than_a_commits_row_cap_is_stored_whole(
    outbox: Any, query: Query
) -> None:
    """A single request of more events than MAX_ROWS_PER_COMMIT (max_batch_events is the
    operator's to raise) is inserted in several statements of one commit, every event once."""
    body = codec.encode(make_event(event_id="x"))
    total = MAX_ROWS_PER_COMMIT + 321
    await outbox.append([NewEvent("shop", f"b{i:05d}", 1.0, ("hook",), body) for i in range(total)])
    ids = [row[0] for row in await query("SELECT event_id FROM events ORDER BY seq")]
    assert ids == [f"b{i:05d}" for i in range(total)]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("rows", [13, 15, 3082])
async def test_a_commit_padded_to_a_prepared_size_stores_each_event_once(
    outbox: Any, tmp_path: Path, rows: int
) -> None:
    """A commit's INSERT is prepared for the next row count up and filled with repeats of
    its last row: the repeats are dropped, each event is stored once, in order (the seqs the
    repeats drew are skipped, never handed out again)."""
    body = codec.encode(make_event(event_id="x"))
    await outbox.append([NewEvent("shop", f"r{i:05d}", 1.0, ("hook",), body) for i in range(rows)])
    await outbox.append([NewEvent("shop", "next", 1.0, ("hook",), body)])
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        stored = db.execute("SELECT seq, event_id FROM events ORDER BY seq").fetchall()
    assert [event_id for _, event_id in stored] == [f"r{i:05d}" for i in range(rows)] + ["next"]
    assert [seq for seq, _ in stored[:rows]] == list(range(1, rows + 1))


async def test_claim_returns_routed_events_in_order(outbox: Any) -> None:
    """A claim holds only the events routed to that destination, oldest first."""
    await outbox.append([new("a"), new("b", routes=("other",)), new("c")])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    assert [item.event_id for item in claim.items] == ["a", "c"]
    assert await outbox.claim("shop", "hook", 10) is None


async def test_cursor_survives_restart_only_past_settled_claims(
    outbox: Any, reopen: Reopen
) -> None:
    """After a restart, settled events are not claimed again and unsettled ones are."""
    await outbox.append([new("a"), new("b"), new("c")])
    first = await outbox.claim("shop", "hook", 1)
    second = await outbox.claim("shop", "hook", 1)
    assert first and second
    await outbox.settle(second, [(second.items[0], DELIVERED)], NO_JITTER)
    await outbox.close()  # "a" is still in flight: the cursor must not pass it

    again = reopen()
    await again.open()
    try:
        claim = await again.claim("shop", "hook", 10)
        assert claim is not None
        assert [item.event_id for item in claim.items] == ["a", "b", "c"]
        await again.settle(claim, [(i, DELIVERED) for i in claim.items], NO_JITTER)
    finally:
        await again.close()


async def test_retry_is_due_after_backoff_and_counts_attempts(
    outbox: Any, clock: FakeClock
) -> None:
    """A retried event comes back only when due, with its attempt count."""
    await outbox.append([new("a")])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    await outbox.settle(claim, [(claim.items[0], Outcome("retry", "http_503", 503))], NO_JITTER)
    assert await outbox.claim("shop", "hook", 10) is None
    assert await outbox.next_due("shop", "hook") == clock.now() + 1.0
    clock.advance(1.0)
    retry = await outbox.claim("shop", "hook", 10)
    assert retry is not None and retry.is_retry
    assert [(i.event_id, i.attempts) for i in retry.items] == [("a", 1)]


async def test_retry_after_wins_over_backoff(outbox: Any, clock: FakeClock) -> None:
    """A platform's Retry-After sets the next try, not the backoff."""
    await outbox.append([new("a")])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    outcome = Outcome("retry", "http_429", 429, retry_after=120.0)
    await outbox.settle(claim, [(claim.items[0], outcome)], NO_JITTER)
    assert await outbox.next_due("shop", "hook") == clock.now() + 120.0


async def test_attempts_exhausted_become_dead_letters(outbox: Any, clock: FakeClock) -> None:
    """After max_attempts failures the event is a dead letter with its reason and status."""
    await outbox.append([new("a")])
    failing = Outcome("retry", "http_500", 500, detail="boom")
    claim = await outbox.claim("shop", "hook", 10)
    for _ in range(3):
        assert claim is not None
        await outbox.settle(claim, [(claim.items[0], failing)], NO_JITTER)
        clock.advance(1000)
        claim = await outbox.claim("shop", "hook", 10)
    assert claim is None
    [dead] = await outbox.dead_letters("shop")
    assert (dead.event_id, dead.attempts, dead.last_status) == ("a", 3, 500)
    assert dead.reason.startswith("http_500: gave up after 3 attempts")


async def test_age_limit_dead_letters_before_attempts_run_out(
    outbox: Any, clock: FakeClock
) -> None:
    """An event whose next try would pass the maximum age is dead-lettered, not retried."""
    policy = RetryPolicy(max_attempts=100, max_age_secs=60.0, jitter=lambda top: top)
    event = new("old")
    await outbox.append([NewEvent("shop", "old", clock.now() - 59.5, ("hook",), event.body)])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    await outbox.settle(claim, [(claim.items[0], Outcome("retry", "http_503", 503))], policy)
    [dead] = await outbox.dead_letters("shop")
    assert "older than 60s" in dead.reason


async def test_rejected_is_dead_at_once_and_replay_revives(outbox: Any, clock: FakeClock) -> None:
    """A rejected event is dead on its first try; replay makes it due again, dry run counts."""
    await outbox.append([new("a"), new("b")])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    rejected = Outcome("rejected", "http_400", 400, detail='{"error":"bad"}')
    await outbox.settle(claim, [(claim.items[0], rejected), (claim.items[1], DELIVERED)], NO_JITTER)
    assert [d.event_id for d in await outbox.dead_letters("shop", "hook")] == ["a"]
    assert await outbox.replay("shop", "hook", dry_run=True) == 1
    assert await outbox.dead_letters("shop")  # a dry run changes nothing
    assert await outbox.replay("shop", "hook") == 1
    revived = await outbox.claim("shop", "hook", 10)
    assert revived is not None and [i.event_id for i in revived.items] == ["a"]
    assert revived.items[0].attempts == 0


async def test_leased_retry_returns_after_lease_when_process_dies(
    reopen: Reopen, clock: FakeClock
) -> None:
    """A retry claimed by a process that died is claimable again once its lease ends."""
    box = reopen(lease_secs=30.0)
    await box.open()
    await box.append([new("a")])
    claim = await box.claim("shop", "hook", 10)
    assert claim is not None
    await box.settle(claim, [(claim.items[0], Outcome("retry", "timeout"))], NO_JITTER)
    clock.advance(5)
    leased = await box.claim("shop", "hook", 10)
    assert leased is not None and leased.is_retry
    await box.close()  # dies holding the lease

    box = reopen(lease_secs=30.0)
    await box.open()
    try:
        assert await box.claim("shop", "hook", 10) is None
        clock.advance(30)
        again = await box.claim("shop", "hook", 10)
        assert again is not None and [i.event_id for i in again.items] == ["a"]
    finally:
        await box.close()


async def test_status_counts_pending_retrying_dead(outbox: Any) -> None:
    """Status shows, per destination, what waits, what retries and what is dead."""
    await outbox.append([new("a"), new("b"), new("c"), new("d", routes=("x",))])
    claim = await outbox.claim("shop", "hook", 2)
    assert claim is not None
    retry = Outcome("retry", "http_503", 503)
    dead = Outcome("rejected", "http_400", 400)
    await outbox.settle(claim, [(claim.items[0], retry), (claim.items[1], dead)], NO_JITTER)
    [hook, x] = await outbox.status("shop", ["hook", "x"])
    assert (hook.pending, hook.retrying, hook.dead) == (1, 1, 1)
    assert (x.pending, x.retrying, x.dead) == (1, 0, 0)


@pytest.mark.sqlite_only
async def test_checkpoint_truncates_the_wal(outbox: Any, tmp_path: Path) -> None:
    """A checkpoint brings the -wal file back to zero bytes."""
    await outbox.append([new(f"e{i}") for i in range(2000)])
    wal = tmp_path / "outbox.db-wal"
    assert wal.stat().st_size > 0
    await outbox.checkpoint()
    assert wal.stat().st_size == 0


async def test_purge_removes_only_settled_events_past_retention(
    outbox: Any, query: Query, clock: FakeClock
) -> None:
    """Purge deletes old events every destination settled, keeps retries, dead and unsent."""
    old = clock.now() - 1000
    events = [new(i) for i in ("done", "dead", "unsent")]
    await outbox.append([NewEvent("shop", e.event_id, old, e.routes, e.body) for e in events])
    await outbox.append([new("recent")])
    claim = await outbox.claim("shop", "hook", 2)
    assert claim is not None
    dead = Outcome("rejected", "http_400", 400)
    await outbox.settle(claim, [(claim.items[0], DELIVERED), (claim.items[1], dead)], NO_JITTER)
    assert await outbox.purge("shop", ["hook"], before=clock.now() - 10) == 1
    left = [row[0] for row in await query("SELECT event_id FROM events ORDER BY seq")]
    assert left == ["dead", "unsent", "recent"]


async def test_claims_alternate_so_retries_never_starve_new_events(
    outbox: Any, clock: FakeClock
) -> None:
    """With retries always due, every other claim still takes new events, and vice versa."""
    await outbox.append([new("old-1"), new("old-2")])
    first = await outbox.claim("shop", "hook", 2)
    assert first is not None
    failed = Outcome("retry", "http_503", 503)
    await outbox.settle(first, [(i, failed) for i in first.items], NO_JITTER)
    await outbox.append([new("fresh-1"), new("fresh-2")])
    clock.advance(10)
    kinds = []
    for _ in range(2):
        claim = await outbox.claim("shop", "hook", 1)
        assert claim is not None
        kinds.append((claim.is_retry, claim.items[0].event_id))
    assert kinds == [(True, "old-1"), (False, "fresh-1")]


async def test_dead_letter_detail_is_scrubbed_of_echoed_identity(outbox: Any) -> None:
    """A platform answer echoing an email or IP is stored (and shown) masked."""
    await outbox.append([new("a")])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    echo = Outcome(
        "rejected", "http_400", 400, detail="bad email jane@example.com from 81.2.69.142"
    )
    await outbox.settle(claim, [(claim.items[0], echo)], NO_JITTER)
    [dead] = await outbox.dead_letters("shop")
    assert dead.detail == "bad email <email> from <ip>"


async def test_dead_letter_detail_masks_the_events_own_identity_values(
    outbox: Any,
) -> None:
    """Names, phones (also as bare digits) and ids of the event itself are masked in any
    case; the platform's own wording stays."""
    event = make_event(
        event_id="p", phones=("+44 20 7946 0958",), first_name="Jane", last_name="Doe"
    )
    await outbox.append([NewEvent("shop", "p", 1.0, ("hook",), codec.encode(event))])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    echo = Outcome(
        "rejected",
        "http_400",
        400,
        detail='{"error": "phone 442079460958 invalid for JANE doe (user customer-42)'
        ' given +44 20 7946 0958"}',
    )
    await outbox.settle(claim, [(claim.items[0], echo)], NO_JITTER)
    [dead] = await outbox.dead_letters("shop")
    assert dead.detail == (
        '{"error": "phone <user_data> invalid for <user_data> <user_data>'
        ' (user <user_data>) given <user_data>"}'
    )


def test_claims_and_pending_counts_walk_the_log_from_the_cursor(tmp_path: Path) -> None:
    """The claim and pending-count queries read the events after a position by seq (a range
    of the table itself), never every event of the store through the de-duplication index."""
    with sqlite3.connect(tmp_path / "plan.db") as db:
        db.executescript(resources.files("router.outbox").joinpath("schema.sql").read_text())
        for sql, params, where in (
            (_NEXT_EVENTS, (0, "shop", 500), "rowid>?"),
            (PENDING_BETWEEN, (0, 9, "shop", "a", "b"), "rowid>? AND rowid<?"),
        ):
            plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert plan == f"SEARCH events USING INTEGER PRIMARY KEY ({where})", plan


async def checkpointed(outbox: Any) -> None:
    """Wait until the outbox's checkpointer has finished a round that began after now."""
    rounds = outbox.checkpointer.rounds
    for _ in range(200):
        if outbox.checkpointer.rounds >= rounds + 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the checkpointer ran no round in 10 s")


@pytest.mark.sqlite_only
async def test_the_wal_stays_bounded_under_continuous_appends(outbox: Any, tmp_path: Path) -> None:
    """The checkpointer copies the WAL into the database between commits and the next commit
    starts it over, so the WAL file stays a small fraction of what was written."""
    body = codec.encode(make_event(event_id="x")) + b" " * 4000  # ~5 KB rows
    written = 0
    for batch in range(40):
        events = [NewEvent("shop", f"b{batch}-{i}", 1.0, ("hook",), body) for i in range(100)]
        await outbox.append(events)
        written += len(body) * len(events)
        if batch % 4 == 3:
            await checkpointed(outbox)
    wal = (tmp_path / "outbox.db-wal").stat().st_size
    assert wal < written / 4, f"WAL {wal:,} bytes after {written:,} written"


@pytest.mark.sqlite_only
async def test_commits_leave_the_checkpoint_to_the_checkpointer(
    outbox: Any, tmp_path: Path
) -> None:
    """A commit past SQLite's usual 1,000 pages of WAL does not copy them into the database
    file inside its acknowledgement (and the writers' lock): the checkpointer's thread does."""
    await asyncio.to_thread(outbox.checkpointer.stop)
    database = tmp_path / "outbox.db"
    before = database.stat().st_size
    body = b"{" + b" " * 5000 + b"}"
    for batch in range(20):  # ~10 MB: 2,500 pages
        await outbox.append(
            [NewEvent("shop", f"c{batch}-{i}", 1.0, ("hook",), body) for i in range(100)]
        )
    assert database.stat().st_size - before < 1 << 20, "a commit checkpointed the WAL"
    outbox.checkpointer.start()
    await checkpointed(outbox)
    assert database.stat().st_size - before > 8 << 20, "the checkpointer copied nothing"
