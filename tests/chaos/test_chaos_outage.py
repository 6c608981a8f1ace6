"""Reliability test 5: a platform down (5xx) for a long outage on an accelerated clock, then
back: the other destination never waits for it, the failing one is probed rather than
hammered, and the backlog drains to it with nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.chaos import clock
from tests.chaos.rig import report, rig, scale
from tests.process.harness import wait_until

RATE = 20  # the server's clocks run 20 x
OUTAGE_SECS = scale(150, 1800)  # on the server's clock
WAIT_SECS = 90.0  # real seconds, for any condition


@pytest.mark.slow
async def test_a_long_outage_of_one_platform_leaves_the_other_alone_and_drains_after(
    tmp_path: Path,
) -> None:
    """One platform answers 503 for the whole outage while clients post: the other platform
    gets every acknowledged event during the outage; the down one sees few requests (its lane
    rests, doubling up to max_pause_secs, instead of retrying each event in a hot loop); once
    it is back, every acknowledged event reaches it."""
    # the shipped retry defaults (1 s initial back-off, 300 s cap and pause), on a 20 x clock
    delivery = {"initial_backoff_secs": 1.0, "max_backoff_secs": 300.0, "timeout_secs": 30.0}
    async with rig(tmp_path, ["down", "steady"], delivery=delivery, max_batch_size=50) as r:
        r.server.env = clock.accelerated(RATE)
        await r.server.start()
        down, steady = r.platforms["down"], r.platforms["steady"]
        down.behaviour.status = 503
        outage = r.history.fault("down answers 503", destination="down")
        real_secs = OUTAGE_SECS / RATE
        async with r.load(clients=3, pause=0.05, seed=5):
            await asyncio.sleep(real_secs)
        acked = set(r.history.acked)

        def steady_has_all() -> bool:
            return acked <= {i for d in steady.deliveries() if d.ok for i in d.ids}

        independent = await wait_until(steady_has_all, WAIT_SECS, step=0.2)
        during = len(down.requests)
        down.behaviour.status = None
        r.history.end(outage)
        drained, code, verdict = await r.finish(WAIT_SECS)
        probes = during / (OUTAGE_SECS / 60)
        report(
            "a long outage of one platform (5)",
            f"'down' answered 503 for {OUTAGE_SECS}s of server time ({real_secs:.1f}s real, clock"
            f" x{RATE}) while 3 clients posted; {during} requests reached it during the outage"
            f" ({probes:.1f} per server minute)",
            verdict.summary(),
        )
        assert independent, "the steady platform did not get every event while the other was down"
        assert drained, "the backlog did not reach the recovered platform\n" + verdict.summary()
        assert code == 0, r.server.tail()
        verdict.assert_ok()
        # a lane in a hot loop would send batch after batch; a resting one probes: at most a
        # handful of batches per rest, rests doubling from 1 s to 300 s
        assert probes <= 30, f"{during} requests in {OUTAGE_SECS}s of outage: not resting"
