"""Reliability test 7: slow and broken connections to a platform (long latency, resets,
half-closed sockets, a peer that accepts and never answers) and slow-loris clients on ingest:
each call is cut and retried with the same event ids, ingest goes on acknowledging, and
nothing is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.chaos.netfaults import FaultProxy, Mode, slow_loris
from tests.chaos.rig import report, rig, scale
from tests.process.harness import wait_until

TIMEOUT_SECS = 3.0  # the webhook's timeout_secs: well above a busy machine's hiccups
PHASE_SECS = scale(1, 8)
FAULTS: tuple[Mode, ...] = ("latency", "reset", "half_close", "blackhole")
LORIS = scale(40, 300)
WAIT_SECS = 60.0


@pytest.mark.slow
async def test_broken_platform_connections_and_slow_loris_clients_lose_nothing(
    tmp_path: Path,
) -> None:
    """While clients post, the connections to one platform are held past the timeout, reset,
    half-closed and black-holed in turn, and slow-loris clients trickle request heads: every
    phase acknowledges events, the slow-loris connections are closed by the header deadline,
    and once the network heals every acknowledged event reaches both platforms."""
    server_limits = {"header_timeout_secs": 2.0}
    async with rig(
        tmp_path,
        ["flaky", "direct"],
        delivery={"timeout_secs": TIMEOUT_SECS, "initial_backoff_secs": 0.2, "max_pause_secs": 2.0},
        server=server_limits,
        max_batch_size=50,
    ) as r:
        flaky = r.platforms["flaky"]
        async with FaultProxy(urlsplit(flaky.url).port or 0) as proxy:
            r.through("flaky", proxy.url)
            await r.server.start()
            stop_loris = asyncio.Event()
            loris = asyncio.create_task(slow_loris(r.config.ingest_port, LORIS, stop_loris))
            acked_per_phase: dict[str, int] = {}
            async with r.load(clients=3, pause=0.05, seed=7):
                for mode in FAULTS:
                    proxy.mode, proxy.latency = mode, TIMEOUT_SECS * 2
                    # a held answer reached the platform: Tagless timed out and sends it again
                    fault = r.history.fault(mode, destination="flaky", duplicates=True)
                    before = len(r.history.acked)
                    await asyncio.sleep(PHASE_SECS)
                    # until the fault met a delivery (the lane may be resting from the last)
                    await wait_until(lambda m=mode: proxy.broken.get(m, 0) > 0, WAIT_SECS)
                    r.history.end(fault)
                    acked_per_phase[mode] = len(r.history.acked) - before
                proxy.mode = "pass"
            stop_loris.set()
            opened, closed = await loris
            drained, code, verdict = await r.finish(WAIT_SECS)
        report(
            "slow and broken connections (7)",
            f"{PHASE_SECS}s each of {', '.join(FAULTS)} on 'flaky' (timeout {TIMEOUT_SECS}s);"
            f" connections broken by the proxy: {proxy.broken}; events acked per phase:"
            f" {acked_per_phase}; slow-loris connections: {opened} opened, {closed} closed by"
            " Tagless",
            verdict.summary(),
        )
        assert all(acked_per_phase.values()), f"ingest stalled in a phase: {acked_per_phase}"
        assert closed == opened, f"{opened - closed} slow-loris connections were left open"
        assert set(proxy.broken) == set(FAULTS), f"faults that met no delivery: {proxy.broken}"
        assert drained, "the backlog did not drain once the network healed\n" + verdict.summary()
        assert code == 0, r.server.tail()
        verdict.assert_ok()
