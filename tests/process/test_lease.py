"""Reliability test 15: retries leased and in flight at a kill -9 come back after the lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import aiohttp
import pytest
from harness import (
    ACKED,
    Sink,
    SinkRequest,
    TaglessServer,
    delivery_rows,
    post_batch,
    wait_until,
)

LEASE_SECS = 5.0
CONCURRENCY = 4  # the default in-flight batches per destination
#: How late after its lease end a retry may be sent (one scheduler tick, generously).
TICK_SECS = 1.0


@pytest.mark.slow
async def test_retries_leased_at_a_kill_are_sent_after_the_lease(
    tagless: Callable[..., TaglessServer],
) -> None:
    """Retries leased and in flight when the process is SIGKILLed are sent again after a restart
    once their lease ends, not before and not later than one scheduler tick after it."""
    mode = "fail"
    release = asyncio.Event()

    async def platform(_: SinkRequest) -> int:
        if mode == "fail":
            return 503
        if mode == "hang":  # keep the retry in flight until the process is gone
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 30)
            return 503
        return 200

    async with Sink(platform) as sink:
        server = tagless(sink.url, lease_secs=LEASE_SECS)
        await server.start()
        ids = [f"lease-{b}-{i}" for b in range(3) for i in range(40)]
        async with aiohttp.ClientSession() as session:
            for start in range(0, len(ids), 40):
                sent = await post_batch(session, server.config.ingest_url, ids[start : start + 40])
                assert sent.outcome == ACKED, (sent.status, sent.error)

        def seen_with(status: int, since: float = 0.0) -> set[str]:
            return {
                i for r in sink.requests if r.status == status and r.arrived >= since for i in r.ids
            }

        # Every event fails once, so each becomes a retry row of the outbox.
        assert await wait_until(lambda: set(ids) <= seen_with(503), 10), server.tail()
        mode, hang_from = "hang", time.time()
        # Retries are claimed (leased) and hang at the platform until every delivery slot is
        # taken (jitter spreads them over several claims); the rest stay due and unleased.
        hung = await wait_until(
            lambda: (
                len([r for r in sink.requests if r.arrived >= hang_from]) >= CONCURRENCY
                or set(ids) <= seen_with(0, hang_from)
            ),
            10,
        )
        assert hung, f"no retries in flight at the platform\n{server.tail()}"
        await asyncio.sleep(0.3)
        in_flight = seen_with(0, hang_from)
        killed_at = time.time()
        server.kill9()

        rows = {row["event_id"]: row for row in delivery_rows(server.config.db_path)}
        assert set(rows) == set(ids), f"retry rows after the kill: {len(rows)} of {len(ids)}"
        assert {row["state"] for row in rows.values()} == {"retry"}, rows
        # due_at is the lease end of a claimed retry, else the time its backoff ends.
        due = {i: float(row["due_at"]) for i, row in rows.items()}
        unleased = sorted(i for i in in_flight if due[i] <= killed_at)
        assert not unleased, f"in flight at the kill but not leased: {unleased[:5]}"

        mode = "ok"
        release.set()
        await server.start()
        ready_at = time.time()
        deadline = max(due.values()) - time.time() + TICK_SECS + 5
        delivered = await wait_until(lambda: set(ids) <= set(sink.delivered()), deadline)
        await asyncio.sleep(0.5)  # room for any duplicate send
        code = await server.stop()
        assert code == 0, f"exit code {code}\n{server.tail()}"

    assert delivered, f"not delivered after the lease: {sorted(set(ids) - set(sink.delivered()))}"
    first_sent = {
        i: min(r.arrived for r in sink.requests if r.delivered and i in r.ids) for i in ids
    }
    early = {i: round(due[i] - t, 3) for i, t in first_sent.items() if t < due[i]}
    assert not early, f"re-sent before the lease or backoff ended (seconds early): {early}"
    late = {
        i: round(t - max(due[i], ready_at), 3)
        for i, t in first_sent.items()
        if t > max(due[i], ready_at) + TICK_SECS
    }
    assert not late, f"in flight longer than the lease plus one tick (seconds late): {late}"
    counts = sink.delivered()
    assert set(counts.values()) == {1}, f"delivered more than once: {counts}"
    assert delivery_rows(server.config.db_path) == [], "retry rows left after delivery"
    delays = [first_sent[i] - due[i] for i in sorted(in_flight)]
    print(
        f"\nlease: {len(in_flight)} of {len(ids)} retries leased and in flight at the kill;"
        f" re-sent {min(delays):+.3f}s..{max(delays):+.3f}s after their lease ended"
        f" (restart ready {ready_at - killed_at:.2f}s after the kill, lease {LEASE_SECS:g}s)"
    )
