"""The outbox refuses appends at its backlog cap and disk floor, and says when it is not ready."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from router import codec
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
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


async def test_the_in_memory_backlog_matches_a_count_of_the_database(
    capped: Capped, clock: FakeClock
) -> None:
    """After any mix of appends (some known), claims, settlements and replays over two
    destinations, the figure kept in memory is what the database counts."""
    box = await capped(1_000_000)
    draw = random.Random(7)
    routes = [("hook",), ("hook", "mail!"), ("mail",), ()]
    outcomes = [DELIVERED, DELIVERED, RETRY, DEAD]
    made = 0
    for _ in range(300):
        step = draw.random()
        if step < 0.4:
            batch = [new(f"e{made + i}", draw.choice(routes)) for i in range(draw.randint(1, 5))]
            made += len(batch)
            if draw.random() < 0.3:  # a client retry of an earlier event rides along
                batch.append(new(f"e{draw.randrange(made)}", draw.choice(routes)))
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
    kept = {d: box.backlog.lane("shop", d) for d in ("hook", "mail")}
    kept_figures = {d: (c.pending, c.retrying) for d, c in kept.items()}
    await box.refresh_backlog("shop", ["hook", "mail"])
    counted = {d: box.backlog.lane("shop", d) for d in ("hook", "mail")}
    assert kept_figures == {d: (c.pending, c.retrying) for d, c in counted.items()}
    assert sum(sum(f) for f in kept_figures.values()) > 0


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
