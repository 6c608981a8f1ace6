"""Several nodes on one PostgreSQL outbox: one dispatcher per destination through a lease, a
dead node's work picked up after it, a late settlement fenced off, pauses and wake-ups shared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from router import codec
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.outbox.base import Claim, NewEvent
from router.outbox.pg_writer import insert_events, lock_appends
from router.outbox.policy import RetryPolicy
from router.outbox.postgres import PostgresOutbox
from router.testing.events import make_event
from tests.retry_kit import retry_on_each

NO_JITTER = RetryPolicy(max_attempts=3, jitter=lambda top: top)
Nodes = Callable[..., Awaitable[PostgresOutbox]]


def new(event_id: str) -> NewEvent:
    return NewEvent("shop", event_id, 1_800_000_000.0, ("hook",), codec.encode(make_event()))


@pytest.fixture
async def nodes(pg_url: str, clock: FakeClock) -> AsyncIterator[Nodes]:
    """A factory of opened outboxes on one database, each a node of its own."""
    opened: list[PostgresOutbox] = []

    async def node(**options: Any) -> PostgresOutbox:
        box = PostgresOutbox(pg_url, **{"clock": clock, **options})
        await box.open()
        opened.append(box)
        return box

    yield node
    for box in opened:
        await box.close()


async def claim_within(box: PostgresOutbox, seconds: float = 30.0) -> Claim:
    """The first claim ``box`` gets, trying until ``seconds`` pass (a lease must run out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (claim := await box.claim("shop", "hook", 10)) is None:
        assert loop.time() < deadline, "no claim before the deadline"
        await asyncio.sleep(0.05)
    return claim


async def sends_only_after_100_s(box: PostgresOutbox, clock: FakeClock, event_id: str) -> None:
    """``box`` claims nothing of the resting destination now and ``event_id`` 100 s later."""
    assert await box.claim("shop", "hook", 10) is None
    clock.advance(100.0)
    taken = await box.claim("shop", "hook", 10)
    assert taken is not None and [i.event_id for i in taken.items] == [event_id]


async def test_one_node_at_a_time_delivers_a_destination(nodes: Nodes) -> None:
    """While node A holds the destination's lease, node B claims nothing of it; events B
    appended go out through A."""
    a, b = await nodes(), await nodes()
    await b.append([new("from-b")])
    claim = await a.claim("shop", "hook", 10)
    assert claim is not None and [i.event_id for i in claim.items] == ["from-b"]
    await b.append([new("more")])
    assert await b.claim("shop", "hook", 10) is None
    await a.settle(claim, [(claim.items[0], DELIVERED)], NO_JITTER)
    again = await a.claim("shop", "hook", 10)
    assert again is not None and [i.event_id for i in again.items] == ["more"]


async def test_a_dead_nodes_leased_work_goes_to_another_and_its_late_settle_is_fenced(
    nodes: Nodes,
) -> None:
    """A claims and stops renewing (it hangs or died); once its lease ends B claims the same
    events from the durable cursor. A's settlement arriving after that records nothing, so
    B's outcome stands and the cursor is B's to move."""
    a = await nodes(lease_secs=1.0)
    b = await nodes(lease_secs=1.0)
    await a.append([new("x"), new("y")])
    lost = await a.claim("shop", "hook", 10)
    assert lost is not None
    assert a._renewer is not None
    a._renewer.cancel()  # A hangs: no more renewals
    taken = await claim_within(b)
    assert [i.event_id for i in taken.items] == ["x", "y"]
    failed = Outcome("rejected", "http_400", 400)
    await a.settle(lost, [(i, failed) for i in lost.items], NO_JITTER)
    assert await b.dead_letters("shop") == []
    await b.settle(taken, [(i, DELIVERED) for i in taken.items], NO_JITTER)
    [status] = await b.status("shop", ["hook"])
    assert (status.pending, status.dead, status.cursor) == (0, 0, 2)


async def test_a_clean_stop_hands_the_lease_over_at_once(nodes: Nodes, pg_url: str) -> None:
    """A node that stops gives its leases up: the next node claims without waiting them out."""
    a = await nodes(lease_secs=600.0)
    b = await nodes(lease_secs=600.0)
    await a.append([new("x")])
    claim = await a.claim("shop", "hook", 10)
    assert claim is not None
    await a.release(claim)
    await a.close()
    taken = await b.claim("shop", "hook", 10)
    assert taken is not None and [i.event_id for i in taken.items] == ["x"]


async def test_a_pause_is_shared_with_the_node_that_takes_over(
    nodes: Nodes, clock: FakeClock
) -> None:
    """A rests the destination (a 429 said wait 100 s) and stops; B, taking the lease, sends
    nothing until the rest ends."""
    a, b = await nodes(), await nodes()
    await a.append([new("x")])
    assert await a.claim("shop", "hook", 10) is not None
    a.share_pause("shop", "hook", clock.now() + 100.0, "http_429")
    await a.close()
    assert await b.paused_until("shop", "hook") == clock.now() + 100.0
    await sends_only_after_100_s(b, clock, "x")


async def test_a_pause_follows_the_wall_clock_of_its_node_back(
    nodes: Nodes, clock: FakeClock
) -> None:
    """A rests the destination for 100 s, then its wall clock is set back an hour: the rest
    still ends 100 s after it began (before, it lasted the hour too), in A's view and in the
    one a node taking the lease over would read."""
    a, b = await nodes(), await nodes()
    await a.append([new("x")])
    claim = await a.claim("shop", "hook", 10)
    assert claim is not None
    await a.settle(claim, [(claim.items[0], DELIVERED)], NO_JITTER)
    await a.append([new("y")])
    a.share_pause("shop", "hook", clock.now() + 100.0, "http_429")
    await asyncio.gather(*a._background)
    clock.advance(-3600.0)
    await sends_only_after_100_s(a, clock, "y")  # resting until its 100 s are over
    assert await b.paused_until("shop", "hook") == clock.now()  # as A moved it


async def test_a_node_whose_clock_went_back_moves_only_its_own_destinations_retries(
    nodes: Nodes, clock: FakeClock
) -> None:
    """A delivers 'hook' and B 'other', each with a retry due in 1 s, when A's clock (not B's)
    is set back an hour: A's retry is due 1 s later on A's clock, B's stays where B's clock
    put it (moved too, it would fall due an hour early)."""
    b_clock = FakeClock()
    a, b = await nodes(), await nodes(clock=b_clock)
    await retry_on_each(a, clock.now(), (a, "hook"), (b, "other"))
    clock.advance(-3600.0)
    assert await a.claim("shop", "hook", 10) is None  # A sees its clock went back
    assert await a.next_due("shop", "hook") == clock.now() + 1.0
    assert await b.next_due("shop", "other") == b_clock.now() + 1.0


async def test_a_commit_on_one_node_wakes_the_dispatchers_of_another(nodes: Nodes) -> None:
    """LISTEN/NOTIFY: B's subscription is set by A's commit, with no polling."""
    a, b = await nodes(), await nodes()
    woken = b.subscribe("shop")
    await a.append([new("x")])
    await asyncio.wait_for(woken.wait(), timeout=30.0)


async def test_the_same_event_sent_to_two_nodes_is_stored_once(nodes: Nodes) -> None:
    """A sender's retry that lands on another node is acknowledged and stores nothing new."""
    a, b = await nodes(), await nodes()
    await asyncio.gather(a.append([new("twice")]), b.append([new("twice")]))
    claim = await a.claim("shop", "hook", 10)
    assert claim is not None and [i.event_id for i in claim.items] == ["twice"]


async def test_a_claimer_never_passes_an_event_another_node_is_still_committing(
    nodes: Nodes,
) -> None:
    """Two nodes append batches concurrently while a third claims and settles all along:
    every event is claimed exactly once (seqs become visible in commit order, so a cursor
    never moves past an event whose commit was still running)."""
    a, b, c = await nodes(), await nodes(), await nodes()
    sent = [f"{node}-{n}-{i}" for node in "ab" for n in range(40) for i in range(5)]
    claimed: list[str] = []
    done = asyncio.Event()

    async def feed(box: PostgresOutbox, name: str) -> None:
        for n in range(40):
            await box.append([new(f"{name}-{n}-{i}") for i in range(5)])

    async def drain() -> None:
        while not done.is_set() or len(claimed) < len(sent):
            claim = await c.claim("shop", "hook", 7)
            if claim is None:
                await asyncio.sleep(0.005)
                continue
            claimed.extend(item.event_id for item in claim.items)
            await c.settle(claim, [(item, DELIVERED) for item in claim.items], NO_JITTER)

    drainer = asyncio.create_task(drain())
    await asyncio.gather(feed(a, "a"), feed(b, "b"))
    done.set()
    await asyncio.wait_for(drainer, timeout=60.0)
    assert sorted(claimed) == sorted(sent)


async def test_an_append_still_committing_is_claimed_once_it_commits(
    nodes: Nodes, pg_url: str
) -> None:
    """Node A's commit is slow (its transaction holds seq 1 open); node B appends meanwhile.
    B's event becomes visible only after A's (B waits for the append lock), so a claim in
    between takes nothing past seq 1, and both events are claimed once A has committed."""
    b, c = await nodes(), await nodes()
    slow = await asyncpg.connect(pg_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        await lock_appends(slow)
        await insert_events(slow, [new("slow")])
        fast = asyncio.create_task(b.append([new("fast")]))
        await asyncio.wait({fast}, timeout=0.5)  # without the lock B would commit now
        early = await c.claim("shop", "hook", 10)
        if early is not None:
            await c.settle(early, [(item, DELIVERED) for item in early.items], NO_JITTER)
        await transaction.commit()
        await fast
    finally:
        await slow.close()
    later = await claim_within(c)
    claimed = ([i.event_id for i in early.items] if early else []) + [
        i.event_id for i in later.items
    ]
    assert claimed == ["slow", "fast"]
