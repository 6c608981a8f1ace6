"""Several nodes on one PostgreSQL outbox: one dispatcher per destination through a lease, a
dead node's work picked up after it, a late settlement fenced off, pauses and wake-ups shared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from router import codec
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.outbox.base import Claim, NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.postgres import PostgresOutbox
from router.testing.events import make_event

NO_JITTER = RetryPolicy(max_attempts=3, jitter=lambda top: top)
Nodes = Callable[..., Awaitable[PostgresOutbox]]


def new(event_id: str) -> NewEvent:
    return NewEvent("shop", event_id, 1_800_000_000.0, ("hook",), codec.encode(make_event()))


@pytest.fixture
async def nodes(pg_url: str, clock: FakeClock) -> AsyncIterator[Nodes]:
    """A factory of opened outboxes on one database, each a node of its own."""
    opened: list[PostgresOutbox] = []

    async def node(**options: Any) -> PostgresOutbox:
        box = PostgresOutbox(pg_url, clock=clock, **options)
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
    assert await b.claim("shop", "hook", 10) is None
    clock.advance(100.0)
    taken = await b.claim("shop", "hook", 10)
    assert taken is not None and [i.event_id for i in taken.items] == ["x"]


async def test_a_commit_on_one_node_wakes_the_dispatchers_of_another(nodes: Nodes) -> None:
    """LISTEN/NOTIFY: B's subscription is set by A's commit, with no polling."""
    a, b = await nodes(), await nodes()
    woken = b.subscribe("shop")
    await a.append([new("x")])
    await asyncio.wait_for(woken.wait(), timeout=30.0)
