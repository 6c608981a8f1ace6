"""Reliability test 18: a randomised mix of kills, pauses (SIGSTOP), graceful stops, platform
errors, rate limits and broken connections while clients post, checked by the one checker:
acknowledged ⊆ delivered, delivered ⊆ sent, duplicates only across faults that allow them,
with the duplicate rate reported per destination."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.chaos.netfaults import FaultProxy
from tests.chaos.rig import Rig, report, rig, scale

SEED = int(os.environ.get("TAGLESS_CHAOS_SEED", "18"))
RUN_SECS = scale(6, 240)
WAIT_SECS = scale(120, 600)


class Mixer:
    """Injects one random fault at a time into a running rig, recording each."""

    def __init__(self, r: Rig, proxy: FaultProxy, rng: random.Random) -> None:
        self.r, self.proxy, self.rng = r, proxy, rng
        self.done: Counter[str] = Counter()

    async def one(self) -> None:
        kind = self.rng.choice(
            [
                "kill",
                "pause",
                "sigterm",
                "5xx",
                "429",
                "latency",
                "reset",
                "half_close",
                "blackhole",
            ]
        )
        self.done[kind] += 1
        await getattr(self, "_" + kind if kind in ("kill", "pause", "sigterm") else "_platform")(
            kind
        )

    async def _kill(self, kind: str) -> None:
        self.r.history.instant("kill -9")
        self.r.server.kill9()
        await self.r.server.start()

    async def _pause(self, kind: str) -> None:
        # timers of a stopped process fire late: a delivery may time out with its answer in
        # the socket and be sent again
        proc = self.r.server.proc
        assert proc is not None
        fault = self.r.history.fault("SIGSTOP", duplicates=True)
        os.killpg(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        os.killpg(proc.pid, signal.SIGCONT)
        self.r.history.end(fault)

    async def _sigterm(self, kind: str) -> None:
        fault = self.r.history.fault("SIGTERM", duplicates=True)
        code = await self.r.server.stop()
        assert code == 0, f"exit code {code} on SIGTERM\n{self.r.server.tail()}"
        self.r.history.end(fault)
        await self.r.server.start()

    async def _platform(self, kind: str) -> None:
        seconds = self.rng.uniform(0.5, 2.5)
        if kind in ("5xx", "429"):
            platform = self.rng.choice(list(self.r.platforms.values()))
            platform.behaviour.status = 503 if kind == "5xx" else 429
            platform.behaviour.retry_after = "1" if kind == "429" else None
            fault = self.r.history.fault(kind, destination=platform.name)
            await asyncio.sleep(seconds)
            platform.behaviour.status, platform.behaviour.retry_after = None, None
        else:
            self.proxy.mode, self.proxy.latency = kind, 6.0  # type: ignore[assignment]
            fault = self.r.history.fault(kind, destination="proxied", duplicates=True)
            await asyncio.sleep(seconds)
            self.proxy.mode = "pass"
        self.r.history.end(fault)


@pytest.mark.slow
async def test_a_randomised_mix_of_faults_keeps_the_promise(tmp_path: Path) -> None:
    """Faults one after another at random while four clients post: the checker finds every
    acknowledged event at all three platforms, nothing invented, and duplicates only across
    kills, pauses, stops and cut connections."""
    rng = random.Random(SEED)
    async with rig(
        tmp_path,
        ["plain", "deduping", "proxied"],
        dedups=("deduping",),
        delivery={"timeout_secs": 3.0, "initial_backoff_secs": 0.2, "max_pause_secs": 3.0},
        server={"shutdown_grace_secs": 2.0},
        max_batch_size=50,
    ) as r:
        proxied = r.platforms["proxied"]
        async with FaultProxy(urlsplit(proxied.url).port or 0) as proxy:
            r.through("proxied", proxy.url)
            await r.server.start()
            mixer = Mixer(r, proxy, rng)
            began = asyncio.get_running_loop().time()
            # paced: the proxy (in this process) carries one platform's deliveries
            async with r.load(clients=4, pause=0.05, within=3.0, seed=SEED):
                while asyncio.get_running_loop().time() - began < RUN_SECS:
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
                    await mixer.one()
            drained, code, verdict = await r.finish(WAIT_SECS, dedups=("deduping",))
        report(
            "randomised mix (18)",
            f"{RUN_SECS}s, seed {SEED}: faults {dict(sorted(mixer.done.items()))}",
            verdict.summary(),
        )
        verdict.assert_ok()
        assert drained, "not everything acknowledged was delivered\n" + verdict.summary()
        assert code == 0, r.server.tail()
