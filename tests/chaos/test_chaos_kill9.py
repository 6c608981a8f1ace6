"""Reliability tests 1, 2 and 15: kill -9 at random moments during ingest and during delivery,
cycle after cycle, loses no acknowledged event, invents none, and re-sends only what was in
flight at a kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.rig import Rig, report, rig, scale
from tests.process.harness import child_pids, ingest_pids, integrity_check

SEED = int(os.environ.get("TAGLESS_CHAOS_SEED", "20261130"))
CONCURRENCY = 4  # in-flight batches per destination (the default)
MAX_BATCH = 50
DRAIN_SECS = 90.0


async def conclude(r: Rig, title: str, did: str, *, kills: int | None = None) -> None:
    """Wait for the backlog to drain, stop Tagless, print the figures and check the history;
    with ``kills``, at most the batches in flight at that many kills arrive twice."""
    drained, code, verdict = await r.finish(DRAIN_SECS, dedups=("deduping",))
    report(title, did, verdict.summary())
    assert drained, "the backlog did not drain within the wait\n" + verdict.summary()
    assert code == 0, f"exit code {code} on SIGTERM\n{r.server.tail()}"
    verdict.assert_ok()
    if kills is None:
        return
    bound = kills * CONCURRENCY * MAX_BATCH
    for name, figures in verdict.figures.items():
        assert figures.duplicates <= bound, (
            f"{name}: {figures.duplicates} duplicates, more than kills x in-flight batches"
            f" ({bound})"
        )


def slow_platforms(r: Rig) -> None:
    """Every platform answers after 20 ms: batches stay in flight long enough to be cut."""
    for platform in r.platforms.values():
        platform.behaviour.delay = 0.02


@contextlib.asynccontextmanager
async def slow_rig(tmp_path: Path, **config: Any) -> AsyncIterator[Rig]:
    """Two slow platforms (one de-duplicating) and a started Tagless configured with
    ``config``."""
    async with rig(
        tmp_path, ["hook", "deduping"], dedups=("deduping",), max_batch_size=MAX_BATCH, **config
    ) as r:
        await r.server.start()
        slow_platforms(r)
        yield r


@pytest.mark.slow
async def test_kill9_cycles_during_ingest_and_delivery_keep_every_acked_event(
    tmp_path: Path,
) -> None:
    """Kills land while clients post and while a backlog drains (rows leased, batches answered
    2xx but not yet marked): every acknowledged event is stored once and reaches both platforms,
    and the only duplicates are batches in flight at a kill."""
    rng = random.Random(SEED)
    ingest_kills, delivery_kills = scale(2, 12), scale(2, 12)
    async with rig(
        tmp_path, ["hook", "deduping"], dedups=("deduping",), max_batch_size=MAX_BATCH
    ) as r:
        began = asyncio.get_running_loop().time()
        await r.server.start()

        async def kill_and_restart(why: str) -> None:
            r.history.instant(f"kill -9 ({why})")
            r.server.kill9()
            verdict = integrity_check(r.config.db_path)
            assert verdict == "ok", f"integrity_check right after kill -9: {verdict}"
            await r.server.start()

        # 1: kills while clients post (the group commit is busy, requests are in flight)
        async with r.load(clients=6, seed=SEED):
            for _ in range(ingest_kills):
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                await kill_and_restart("ingest")
            await asyncio.sleep(rng.uniform(0.3, 1.0))

        # 2 and 15: both platforms down while clients post, so a backlog and leased retries
        # build up; then slow but up, and kills while the backlog drains
        for platform in r.platforms.values():
            platform.behaviour.status = 503
        outage = r.history.fault("both platforms answer 503")
        async with r.load(clients=4, seed=SEED + 1):
            await asyncio.sleep(scale(2, 6))
        for platform in r.platforms.values():
            platform.behaviour.status = None
        slow_platforms(r)
        r.history.end(outage)
        for _ in range(delivery_kills):
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            await kill_and_restart("delivery")

        await conclude(
            r,
            "kill -9 cycles (1, 2, 15)",
            f"{ingest_kills} kills during ingest, a {outage.ended - outage.started:.1f}s outage,"
            f" {delivery_kills} kills while the backlog drained; seed {SEED};"
            f" {asyncio.get_running_loop().time() - began:.1f}s",
            kills=ingest_kills + delivery_kills,
        )


@pytest.mark.slow
async def test_kill9_of_an_ingest_process_or_of_all_keeps_every_acked_event(
    tmp_path: Path,
) -> None:
    """With ``server.ingest_processes: 2``, kills land on one ingest process (its requests in
    flight are cut, the other serves, it is started again) and on the whole group, while
    clients post and the platforms are slow: every acknowledged event reaches both platforms,
    nothing is invented, and only the whole-group kills may re-send what was in flight."""
    rng = random.Random(SEED + 7)
    cycles = scale(2, 10)
    async with slow_rig(tmp_path, server={"ingest_processes": 2}) as r:
        began = asyncio.get_running_loop().time()
        async with r.load(clients=6, seed=SEED + 7):
            for _ in range(cycles):
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                pids = ingest_pids(r.server)
                victim = rng.choice(sorted(pids))
                r.history.instant(f"kill -9 of ingest process {victim}", duplicates=False)
                os.kill(pids[victim], signal.SIGKILL)
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                r.history.instant("kill -9 of every process")
                r.server.kill9()
                verdict = integrity_check(r.config.db_path)
                assert verdict == "ok", f"integrity_check right after kill -9: {verdict}"
                await r.server.start()
        await conclude(
            r,
            "kill -9 with ingest processes (1, 2)",
            f"{cycles} cycles of one ingest process killed then every process; seed {SEED + 7};"
            f" {asyncio.get_running_loop().time() - began:.1f}s",
        )


@pytest.mark.slow
async def test_kill9_of_a_delivery_process_keeps_every_acked_event(tmp_path: Path) -> None:
    """With ``server.delivery_processes: 2``, kills land on one delivery process at a time
    while clients post and the platforms are slow: it is started again, its lanes resume from
    their cursors, the other process's lanes go on; every acknowledged event reaches both
    platforms, nothing is invented, and the only duplicates are batches in flight at a kill."""
    rng = random.Random(SEED + 11)
    cycles = scale(2, 10)
    async with slow_rig(tmp_path, server={"delivery_processes": 2}) as r:
        began = asyncio.get_running_loop().time()
        kills = 0
        async with r.load(clients=6, seed=SEED + 11):
            for _ in range(cycles):
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                pids = child_pids(r.server, b"router.delivery_process")
                if not pids:  # both are being started again
                    continue
                victim = rng.choice(sorted(pids))
                r.history.instant(f"kill -9 of delivery process {victim}")
                os.kill(pids[victim], signal.SIGKILL)
                kills += 1
        restarts = sum(e["event"] == "delivery_process_exited" for e in r.server.log_events())
        await conclude(
            r,
            "kill -9 of delivery processes (1, 2)",
            f"{kills} kills of one delivery process in {cycles} tries ({restarts} restarts);"
            f" seed {SEED + 11}; {asyncio.get_running_loop().time() - began:.1f}s",
            kills=kills,
        )
        assert kills and restarts >= kills - 1  # the last one may still be starting again
