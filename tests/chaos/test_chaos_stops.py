"""Reliability tests 16 and 17: SIGTERM under load, cycle after cycle (exit 0, answers 200 or
503 only, nothing lost across restarts), and wall-clock jumps of an hour either way while
retries wait (no hot loop, no stalled queue, event times sent unchanged)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import clock
from tests.chaos.rig import report, rig, scale
from tests.process.harness import wait_until

GRACE_SECS = 2.0
WAIT_SECS = 90.0


@pytest.mark.slow
async def test_sigterm_cycles_under_load_exit_zero_and_lose_nothing(tmp_path: Path) -> None:
    """Clients post and a slow platform keeps deliveries in flight while the process is
    stopped with SIGTERM and started again, several times: every stop exits 0 within the
    grace period (plus interpreter teardown), clients only ever hear 200 or 503 (or a refused
    connection), and every acknowledged event is delivered after the last start."""
    rng = random.Random(16)
    cycles = scale(2, 10)
    async with rig(
        tmp_path, ["slow", "quick"], server={"shutdown_grace_secs": GRACE_SECS}, max_batch_size=50
    ) as r:
        r.platforms["slow"].behaviour.delay = 0.3
        await r.server.start()
        codes: list[int | None] = []
        async with r.load(clients=4, pause=scale(0.0, 0.2), seed=16):
            for _ in range(cycles):
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                # a delivery still in flight past the grace is sent again after the restart
                stop = r.history.fault("SIGTERM", duplicates=True)
                r.server.terminate()
                codes.append(await r.server.wait_exit(GRACE_SECS + 10))
                r.history.end(stop)
                if codes[-1] is None:
                    break
                await r.server.start()
        drained, code, verdict = await r.finish(scale(90, 600))
        codes.append(code)
        answers = sorted({s.status for s in r.history.sent}, key=str)
        report(
            "SIGTERM under load (16)",
            f"{cycles} SIGTERM and restart cycles, grace {GRACE_SECS}s; exit codes {codes};"
            f" answers seen {answers}",
            verdict.summary(),
        )
        assert set(codes) == {0}, f"exit codes {codes}\n{r.server.tail()}"
        assert set(answers) <= {200, 503, None}, f"answers other than 200/503: {answers}"
        assert drained, verdict.summary()
        verdict.assert_ok()


def timed(event_id: str, when: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": event_id,
        "userId": "u1",
        "timestamp": when.isoformat(),
        "properties": {"order_id": f"o-{event_id}", "revenue": 5, "currency": "EUR"},
    }


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_wall_clock_jumps_neither_spin_nor_stall_retries(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """The platform fails while the server's wall clock jumps an hour ahead, then two hours
    back (its monotonic clock untouched): it is not hammered meanwhile, everything is
    delivered soon after it recovers, and each event keeps the time its sender gave it. On
    either outbox: PostgreSQL's due times are wall times of the node too."""
    # rests and back-offs of a few seconds: a queue still waiting long after recovery stalled
    delivery = {"initial_backoff_secs": 0.5, "max_backoff_secs": 2.0, "max_pause_secs": 4.0}
    outbox = {"url": request.getfixturevalue("pg_url")} if backend == "postgres" else {}
    async with rig(tmp_path, ["hook"], delivery=delivery, outbox=outbox) as r:
        wall = clock.WallClock(tmp_path)
        r.server.env = wall.env
        await r.server.start()
        hook = r.platforms["hook"]
        hook.behaviour.status = 503
        failing = r.history.fault("hook answers 503", destination="hook")
        when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        sent = {f"{r.run}-{n}": when + timedelta(seconds=n) for n in range(200)}
        await r.post_messages([timed(i, t) for i, t in sent.items()])
        await wait_until(lambda: len(hook.requests) >= 3, WAIT_SECS)
        # leases are wall times too: a jump can end one early, and a batch still in flight
        # be claimed and sent again (same event ids)
        r.history.fault("wall clock off by an hour", duplicates=True)
        for offset in (3600, -3600):
            r.history.instant(f"wall clock set to {offset:+d}s", duplicates=False)
            wall.jump(offset)
            await asyncio.sleep(3)  # a second for the process to see it, and some retries
        during = len(hook.requests)
        hook.behaviour.status = None
        r.history.end(failing)
        drained, code, verdict = await r.finish(WAIT_SECS)
        times = {
            event["event_id"]: event.get("occurred_at")
            for seen in hook.requests
            if 200 <= seen.status < 300
            for event in seen.json()["events"]
        }
        wrong = {i: times[i] for i in times if not _same_instant(times[i], sent[i])}
        report(
            f"wall-clock jumps (17), {backend} outbox",
            f"the server's wall clock went +1 h, then -1 h from real while 'hook' failed;"
            f" {during} requests reached it meanwhile; {len(wrong)} events sent with a changed"
            " time",
            verdict.summary(),
        )
        assert during <= 40, f"{during} requests while failing: a hot loop"
        assert drained, "the queue stalled after the clock went back\n" + verdict.summary()
        assert code == 0, r.server.tail()
        verdict.assert_ok()
        assert not wrong, f"event times changed: {list(wrong.items())[:3]}"


def _same_instant(text: Any, expected: datetime) -> bool:
    return isinstance(text, str) and datetime.fromisoformat(text.replace("Z", "+00:00")) == expected
