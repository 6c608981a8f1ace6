"""Three `tagless serve` nodes on one PostgreSQL outbox: events posted to all three are all
delivered; kill -9 the node delivering and the other two deliver its leased work."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable

import aiohttp
import asyncpg
import pytest
from harness import ACKED, INDETERMINATE, History, Sink, SinkRequest, TaglessServer, post_batch

NODES = 3
CLIENTS = 6
LEASE_SECS = 2.0
MAX_BATCH = 50
CONCURRENCY = 4  # the default in-flight batches per destination
DELIVERY_WAIT_SECS = 90.0


async def slow(_: SinkRequest) -> int:
    """The platform takes a moment, so the delivering node always has leased work in flight."""
    await asyncio.sleep(0.05)
    return 200


def acked_batches(history: History) -> int:
    return sum(sent.outcome == ACKED for sent in history.sent)


async def lease(url: str) -> tuple[int, int] | None:
    """The pid of the node holding the destination's lease, and the lease's epoch."""
    db = await asyncpg.connect(url)
    try:
        row = await db.fetchrow("SELECT node, epoch FROM leases WHERE destination = 'hook'")
    finally:
        await db.close()
    return None if row is None else (int(row["node"].split("-")[-2]), int(row["epoch"]))


async def holder(servers: list[TaglessServer], url: str) -> TaglessServer | None:
    """The live node holding the destination's lease."""
    found = await lease(url)
    for server in servers:
        if found is not None and server.proc is not None and server.proc.pid == found[0]:
            return server if server.running else None
    return None


@pytest.mark.slow
async def test_three_nodes_deliver_everything_and_survive_a_kill9_of_the_delivering_one(
    tagless: Callable[..., TaglessServer], pg_url: str
) -> None:
    """Events spread over three nodes; once the delivering node has shipped some, it is
    killed with work leased; every acknowledged event is delivered, nothing unsent is, and the
    duplicates stay within what the dead node had in flight."""
    run = uuid.uuid4().hex[:6]
    history = History()
    stop_load = asyncio.Event()
    async with Sink(slow) as sink:
        servers = [
            tagless(sink.url, outbox_url=pg_url, lease_secs=LEASE_SECS, max_batch_size=MAX_BATCH)
            for _ in range(NODES)
        ]
        for server in servers:
            await server.start()
        urls = itertools.cycle([server.config.ingest_url for server in servers])

        async def client(n: int, session: aiohttp.ClientSession) -> None:
            for batch in itertools.count():
                if stop_load.is_set():
                    return
                ids = [f"pg-{run}-c{n}-b{batch}-{i}" for i in range(20)]
                sent = await post_batch(session, next(urls), ids, within=10.0)
                history.add(sent)
                if sent.outcome != ACKED:
                    await asyncio.sleep(0.05)

        async with aiohttp.ClientSession() as session:
            clients = [asyncio.create_task(client(n, session)) for n in range(CLIENTS)]
            try:
                for _ in range(600):
                    if len(sink.delivered()) >= 300 and await holder(servers, pg_url):
                        break
                    await asyncio.sleep(0.05)
                victim = await holder(servers, pg_url)
                assert victim is not None, "no node took the destination's lease"
                victim.kill9()
                before = acked_batches(history)
                for _ in range(1200):  # load goes on through the two others
                    if acked_batches(history) >= before + 30:
                        break
                    await asyncio.sleep(0.05)
            finally:
                stop_load.set()
                await asyncio.gather(*clients)

        acked = history.ids(ACKED)
        for _ in range(int(DELIVERY_WAIT_SECS / 0.1)):
            if acked <= set(sink.delivered()):
                break
            await asyncio.sleep(0.1)
        delivered = sink.delivered()
        missing = acked - set(delivered)
        assert not missing, f"{len(missing)} acknowledged events never delivered"
        invented = set(delivered) - acked - history.ids(INDETERMINATE)
        assert not invented, f"delivered but never sent: {sorted(invented)[:5]}"
        duplicates = sum(count - 1 for count in delivered.values())
        print(
            f"\ncluster: {NODES} nodes, {len(acked)} events acknowledged, all delivered;"
            f" {duplicates} duplicate deliveries ({duplicates / len(acked):.2%}) after one kill -9"
        )
        assert duplicates <= CONCURRENCY * MAX_BATCH, (
            "more duplicates than the dead node had leased"
        )
        for server in servers:
            if server.running:
                assert await server.stop() == 0
