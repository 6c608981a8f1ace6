"""The outbox refuses appends at its backlog cap and disk floor, and says when it is not ready."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from router import codec
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.outbox import recount, room
from router.outbox.base import NewEvent, OutboxFull, OutboxLowOnDisk, OutboxUnavailable
from router.outbox.policy import RetryPolicy
from router.outbox.room import PROBE_EVERY_SECS
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event

NO_JITTER = RetryPolicy(max_attempts=3, jitter=lambda top: top)
RETRY = Outcome("retry", "http_503", 503)
DEAD = Outcome("rejected", "http_400", 400)
MB = 1 << 20


def new(event_id: str, routes: tuple[str, ...] = ("hook",), store: str = "shop") -> NewEvent:
    body = codec.encode(make_event(event_id=event_id, store=store))
    return NewEvent(store, event_id, 1_800_000_000.0, routes, body)


class Disk:
    """A filesystem whose free space the test sets; counts how often it was asked."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.looks = 0

    def __call__(self, path: Path) -> int:
        self.looks += 1
        return self.free


@pytest.fixture
def disk() -> Disk:
    return Disk(10_000 * MB)


Capped = Callable[[int], Awaitable[SqliteOutbox]]


@pytest.fixture
async def capped(tmp_path: Path, clock: FakeClock, disk: Disk) -> AsyncIterator[Capped]:
    """Open an outbox with ``max_pending_events`` set to the argument (one per test)."""
    boxes: list[SqliteOutbox] = []

    async def make(cap: int) -> SqliteOutbox:
        box = SqliteOutbox(
            tmp_path / "outbox.db", clock=clock, max_pending_events=cap, free_bytes=disk
        )
        await box.open()
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        await box.close()


def stored(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]


async def test_a_store_at_its_backlog_cap_is_refused_until_deliveries_make_room(
    capped: Capped, tmp_path: Path
) -> None:
    """With the cap's worth of undelivered events, an append is refused and stores nothing;
    other stores go on; once events are delivered the store is taken again."""
    box = await capped(5)
    for i in range(5):
        await box.append([new(f"e{i}")])
    with pytest.raises(OutboxFull, match="5 events of this store wait for delivery"):
        await box.append([new("refused")])
    await box.append([new("o1", store="other")])
    assert "refused" not in stored(tmp_path)

    claim = await box.claim("shop", "hook", 2)
    assert claim is not None
    await box.settle(claim, [(item, DELIVERED) for item in claim.items], NO_JITTER)
    await box.append([new("later")])
    assert stored(tmp_path)[-1] == "later"


async def test_retries_count_toward_the_cap_and_dead_letters_do_not(
    capped: Capped,
) -> None:
    """An event waiting for a retry is undelivered; a dead letter waits for an operator."""
    box = await capped(3)
    await box.append([new("a"), new("b"), new("c")])
    claim = await box.claim("shop", "hook", 3)
    assert claim is not None
    outcomes = [(claim.items[0], RETRY), (claim.items[1], RETRY), (claim.items[2], DEAD)]
    await box.settle(claim, outcomes, NO_JITTER)
    assert box.backlog.of_store("shop") == 2
    await box.append([new("d")])
    with pytest.raises(OutboxFull):
        await box.append([new("e")])


async def test_a_client_retry_of_known_events_does_not_count_twice(
    capped: Capped,
) -> None:
    """Appending a known event_id stores nothing and adds nothing to the backlog, also when
    it shares a commit with new events."""
    box = await capped(100)
    await box.append([new("a"), new("b")])
    await asyncio.gather(box.append([new("a"), new("b")]), box.append([new("c")]))
    await box.append([new("a")])
    assert box.backlog.of_store("shop") == 3


async def mix(
    box: SqliteOutbox, clock: FakeClock, draw: random.Random, steps: int, made: list[str]
) -> None:
    """``steps`` random appends (some of events in ``made``, known), claims, settlements and
    replays over the destinations ``hook`` and ``mail`` of store ``shop``."""
    routes = [("hook",), ("hook", "mail!"), ("mail",), ()]
    outcomes = [DELIVERED, DELIVERED, RETRY, DEAD]
    for _ in range(steps):
        step = draw.random()
        if step < 0.4:
            batch = [
                new(f"e{len(made) + i}", draw.choice(routes)) for i in range(draw.randint(1, 5))
            ]
            made += [event.event_id for event in batch]
            if draw.random() < 0.3:  # a client retry of an earlier event rides along
                batch.append(new(draw.choice(made), draw.choice(routes)))
            await box.append(batch)
        elif step < 0.9:
            dest = draw.choice(["hook", "mail"])
            claim = await box.claim("shop", dest, draw.randint(1, 6))
            if claim is not None:
                settled = [(item, draw.choice(outcomes)) for item in claim.items]
                await box.settle(claim, settled, NO_JITTER)
        elif step < 0.95:
            await box.replay("shop", draw.choice(["hook", "mail", None]))
        else:
            clock.advance(5.0)  # retries fall due


def figures(box: SqliteOutbox) -> dict[str, tuple[int, int]]:
    return {
        d: (box.backlog.lane("shop", d).pending, box.backlog.lane("shop", d).retrying)
        for d in ("hook", "mail")
    }


def counted_by_hand(path: Path) -> dict[str, tuple[int, int]]:
    """Each destination's (pending, retrying), worked out in Python from the raw rows."""
    with sqlite3.connect(path) as db:
        cursors = dict(db.execute("SELECT destination, seq FROM cursors WHERE store = 'shop'"))
        events = list(db.execute("SELECT seq, routes FROM events WHERE store = 'shop'"))
        retries = list(
            db.execute(
                "SELECT destination FROM deliveries WHERE store = 'shop' AND state = 'retry'"
            )
        )
    found = {}
    for dest in ("hook", "mail"):
        routed = [seq for seq, routes in events if {dest, dest + "!"} & set(routes.split())]
        pending = sum(seq > cursors.get(dest, 0) for seq in routed)
        found[dest] = (pending, sum(row[0] == dest for row in retries))
    return found


async def test_the_in_memory_backlog_matches_a_count_of_the_database(
    capped: Capped, clock: FakeClock
) -> None:
    """After any mix of appends (some known), claims, settlements and replays over two
    destinations, the figure kept in memory is what the database counts."""
    box = await capped(1_000_000)
    await mix(box, clock, random.Random(7), 300, [])
    kept = figures(box)
    await box.refresh_backlog("shop", ["hook", "mail"])
    assert kept == figures(box) == counted_by_hand(box.path)
    assert sum(sum(f) for f in kept.values()) > 0


async def test_a_recount_read_before_later_commits_still_counts_exactly(
    capped: Capped, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recount reads the bulk outside the writers' lock, then in a commit only what changed
    since: appends, settlements, cursor moves and replays between the two steps are all
    counted, once."""
    box = await capped(1_000_000)
    draw, made = random.Random(11), []
    for _ in range(12):
        await mix(box, clock, draw, 30, made)
        seen = recount.count_outside(box.path, "shop", ["hook", "mail"])
        await mix(box, clock, draw, draw.randint(0, 30), made)  # between the two steps
        monkeypatch.setattr(room, "count_outside", lambda *args, seen=seen: seen)
        await box.refresh_backlog("shop", ["hook", "mail"])
        assert figures(box) == counted_by_hand(box.path)


async def test_the_commit_of_a_recount_does_not_read_the_whole_backlog(
    capped: Capped, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ingest request waits while a commit holds the writers' lock: the part of a recount
    inside the commit costs the same with 500 or 20,000 events waiting (counted in SQLite VM
    steps, not time); without the read outside the lock it grows with the backlog."""
    box = await capped(1_000_000)
    steps = {True: [0], False: [0]}
    outside = True
    real = box.writer.write

    async def counting(job: Callable[[sqlite3.Connection], Any]) -> Any:
        def run(db: sqlite3.Connection) -> Any:
            tally = steps[outside]

            def tick() -> int:
                tally[0] += 1
                return 0

            db.set_progress_handler(tick, 10)
            try:
                return job(db)
            finally:
                db.set_progress_handler(None, 10)

        return await real(run)

    monkeypatch.setattr(box.writer, "write", counting)
    made = 0
    costs: dict[tuple[bool, int], int] = {}
    for waiting in (500, 20_000):
        while made < waiting:
            await box.append([new(f"e{made + i}", ("hook", "mail")) for i in range(500)])
            made += 500
        for outside in (True, False):
            box.room.path = box.path if outside else None
            steps[outside][0] = 0
            await box.refresh_backlog("shop", ["hook", "mail"])
            assert figures(box) == {"hook": (waiting, 0), "mail": (waiting, 0)}
            costs[outside, waiting] = steps[outside][0]
    assert costs[True, 20_000] <= costs[True, 500] + 5, costs
    assert costs[False, 20_000] > 20 * costs[False, 500], costs


async def test_a_low_disk_refuses_appends_above_the_floor_and_looks_once_a_second(
    tmp_path: Path, clock: FakeClock, disk: Disk
) -> None:
    """Below ``min_free_disk_mb`` an append is refused before anything is stored; the free
    space is looked up at most once a second, and appends go in again once it is back."""
    box = SqliteOutbox(tmp_path / "o.db", clock=clock, min_free_disk_mb=256, free_bytes=disk)
    await box.open()
    try:
        disk.free = 255 * MB
        for _ in range(3):
            with pytest.raises(OutboxLowOnDisk, match="255 MB free; the floor is 256 MB"):
                await box.append([new("refused")])
        assert disk.looks == 1
        disk.free = 257 * MB
        with pytest.raises(OutboxLowOnDisk):  # the last look is less than a second old
            await box.append([new("refused")])
        clock.advance(1.0)
        await box.append([new("taken")])
        assert disk.looks == 2
    finally:
        await box.close()
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert [r[0] for r in db.execute("SELECT event_id FROM events")] == ["taken"]


async def test_readiness_names_why_ingest_cannot_commit(
    capped: Capped, clock: FakeClock, disk: Disk
) -> None:
    """Ready when appends would go in; otherwise low_disk, backlog_full (only when every
    store is at its cap) or outbox_closed."""
    box = await capped(2)
    assert await box.unready(["shop", "other"]) is None
    await box.append([new("a"), new("b")])
    assert await box.unready(["shop", "other"]) is None  # "other" can still take events
    assert await box.unready(["shop"]) == "backlog_full"
    disk.free = 1 * MB
    clock.advance(1.0)
    assert await box.unready(["shop", "other"]) == "low_disk"
    await box.close()
    assert await box.unready(["shop"]) == "outbox_closed"


async def test_readiness_comes_back_by_itself_once_commits_succeed_again(
    capped: Capped, clock: FakeClock, tmp_path: Path
) -> None:
    """After a failed commit readiness is false; a check tries a commit at most once per
    PROBE_EVERY_SECS and is ready again as soon as one succeeds."""
    box = await capped(100)
    await box.writer.outside_transaction(lambda db: db.execute("PRAGMA busy_timeout=20"))
    other = sqlite3.connect(tmp_path / "outbox.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(OutboxUnavailable):
        await box.append([new("a")])
    assert await box.unready(["shop"]) == "commit_failed"
    other.execute("ROLLBACK")
    other.close()
    assert await box.unready(["shop"]) == "commit_failed"  # tried less than a second ago
    clock.advance(PROBE_EVERY_SECS)
    assert await box.unready(["shop"]) is None
    await box.append([new("a")])
