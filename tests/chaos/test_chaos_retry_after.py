"""Reliability test 6: 429 with ``Retry-After`` in seconds and as an HTTP date: no request to
that platform before the stated time, nothing counted as a terminal failure, the other
platform unaffected."""

from __future__ import annotations

import time
from email.utils import formatdate
from pathlib import Path

import pytest

from tests.chaos.rig import Platform, Rig, report, rig
from tests.process.harness import wait_until

WAIT_SECS = 60.0
TOLERANCE_SECS = 1.0  # an HTTP date has whole seconds


def wall(monotonic: float) -> float:
    """A monotonic time of the platform's records as Unix time."""
    return time.time() - (time.monotonic() - monotonic)


async def throttle(r: Rig, platform: Platform, header: str, label: str) -> tuple[float, float]:
    """Answer 429 with ``header`` to the next request, then 200 again; post a batch; return
    when (Unix time) the 429 went out and when the next request came."""
    platform.behaviour.status, platform.behaviour.retry_after = 429, header
    fault = r.history.fault(f"429 Retry-After: {header}", destination=platform.name)
    before = len(platform.requests)
    assert await r.post([f"{r.run}-{label}-{i}" for i in range(20)]) == "acked"
    assert await wait_until(lambda: len(platform.requests) > before, WAIT_SECS)
    platform.behaviour.status, platform.behaviour.retry_after = None, None
    r.history.end(fault)
    assert await r.drained(WAIT_SECS), f"the events throttled with {header} never arrived"
    refused, retried = platform.requests[before], platform.requests[before + 1]
    return wall(refused.at), wall(retried.at)


@pytest.mark.slow
async def test_retry_after_in_seconds_and_as_a_date_is_waited_out(tmp_path: Path) -> None:
    """A 429 asking for 3 s, then one asking until an HTTP date ~5 s ahead: the platform hears
    nothing before either time (±1 s), the throttled events arrive afterwards and none is
    dead-lettered, and the other platform's events flow meanwhile."""
    async with rig(tmp_path, ["throttled", "other"]) as r:
        await r.server.start()
        throttled = r.platforms["throttled"]

        refused, retried = await throttle(r, throttled, "3", "seconds")
        waited = retried - refused
        assert waited >= 3 - TOLERANCE_SECS, f"retried {waited:.2f}s after 'Retry-After: 3'"

        until = int(time.time()) + 5  # whole seconds, as the header says it
        _, retried = await throttle(r, throttled, formatdate(until, usegmt=True), "date")
        late = retried - until
        assert late >= -TOLERANCE_SECS, f"retried {-late:.2f}s before the HTTP date"

        _, code, verdict = await r.finish()
        report(
            "429 with Retry-After (6)",
            f"Retry-After: 3 -> first retry after {waited:.2f}s; Retry-After as an HTTP date ~5 s"
            f" ahead -> first retry {late:+.2f}s from it",
            verdict.summary(),
        )
        assert code == 0, r.server.tail()
        verdict.assert_ok()
