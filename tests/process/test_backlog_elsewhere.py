"""Backpressure where another process settles what is committed (``ingest_processes``, or
``delivery_processes``): the committing process's backlog figure only grows between counts
from the database, so past half the cap it counts afresh, and ingest does not refuse until its
next round (``wal_checkpoint_secs``) while delivery keeps up."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
import pytest
from harness import ACKED, Sink, TaglessServer, post_batch, wait_until

CAP = 40


@pytest.mark.parametrize(
    "processes",
    [{"ingest_processes": 1}, {"delivery_processes": 1}],
    ids=["ingest-process", "delivery-process"],
)
async def test_ingest_takes_events_again_once_delivery_caught_up(
    tagless: Callable[..., TaglessServer], processes: dict[str, int]
) -> None:
    async with Sink() as sink:
        server = tagless(sink.url, max_pending_events=CAP, **processes)
        await server.start()
        acked: set[str] = set()
        async with aiohttp.ClientSession() as session:
            # every batch is delivered before the next goes: the backlog stays near 0, yet the
            # committing process commits 3 x CAP events, more than CAP since any count
            for n in range(3 * CAP // 5):
                ids = [f"b{n}-{i}" for i in range(5)]
                sent = await post_batch(session, server.config.ingest_url, ids)
                if sent.outcome != ACKED:  # a count under way may come a little late
                    assert sent.status == 503, sent
                    # counted afresh within seconds, not wal_checkpoint_secs (30 s) later
                    deadline = time.monotonic() + 10
                    while sent.outcome != ACKED:
                        assert time.monotonic() < deadline, server.tail()
                        await wait_until(lambda: False, 0.2)
                        sent = await post_batch(session, server.config.ingest_url, ids)
                acked.update(ids)
                assert await wait_until(lambda: acked <= set(sink.delivered()), 10)
        assert await server.stop() == 0
