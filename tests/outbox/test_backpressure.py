"""End to end: ingest answers 503 with Retry-After at the backlog cap and the disk floor, stores
nothing of a refused request, and takes events again once there is room."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.clock import FakeClock
from router.testing.fake_platform import Answer, FakePlatform
from router.testing.server import RunningTagless, basic_auth, write_config_dir

STORE = """\
store: shop
write_keys: [shop-key]
client_ip: {{trusted_proxies: [127.0.0.1/32]}}
destinations:
  - {{id: hook, type: webhook, url: "{url}/hook", max_batch_size: 100}}
"""
MB = 1 << 20


def with_outbox(config: Path, settings: str) -> Path:
    """Add ``settings`` (YAML flow-map entries) to the test config's ``outbox`` section."""
    yaml = config / "tagless.yaml"
    yaml.write_text(yaml.read_text().replace("outbox: {path: ", f"outbox: {{{settings}, path: "))
    return config


@pytest.fixture
async def down_platform() -> AsyncIterator[FakePlatform]:
    async with FakePlatform(default=Answer(503, {"error": "down for maintenance"})) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    """Fake time from now: retries and rests wait until the test moves it."""
    return FakeClock(start=time.time())


async def post(running: RunningTagless, body: Any) -> tuple[int, str | None]:
    assert running.session is not None
    async with running.session.post(
        running.base + "/v1/batch", json=body, headers=basic_auth("shop-key")
    ) as answer:
        await answer.read()
        return answer.status, answer.headers.get("Retry-After")


async def ready(running: RunningTagless) -> list[tuple[int, Any]]:
    """The /readyz answer of the ingest and the admin listener."""
    assert running.session is not None
    answers = []
    for port in (running.app.ports["ingest"], running.app.ports["admin"]):
        async with running.session.get(f"http://127.0.0.1:{port}/readyz") as answer:
            answers.append((answer.status, await answer.json()))
    return answers


def batch(prefix: str, size: int) -> dict[str, Any]:
    return {
        "batch": [
            {
                "type": "track",
                "messageId": f"{prefix}-{i}",
                "userId": "u1",
                "event": "Order Completed",
            }
            for i in range(size)
        ]
    }


def stored_ids(running: RunningTagless) -> set[str]:
    with sqlite3.connect(running.app.config.outbox.path) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM events")}


async def until(check: Callable[[], bool], step: Callable[[], None], within: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            return False
        step()
        await asyncio.sleep(0.02)
    return True


async def test_an_outage_fills_the_backlog_to_max_pending_events_then_ingest_answers_503(
    tmp_path: Path, down_platform: FakePlatform, clock: FakeClock
) -> None:
    """Platform down, 5,000 events against max_pending_events 1000: about 1,000 are taken,
    the rest answered 503 with Retry-After and not stored; /readyz says backlog_full on both
    listeners; once the platform is back and the backlog drained, ingest takes events again."""
    config = write_config_dir(tmp_path, STORE.format(url=down_platform.url))
    running = RunningTagless(with_outbox(config, "max_pending_events: 1000"), clock=clock)
    await running.start()
    try:
        answers: dict[str, tuple[int, str | None]] = {}
        for wave in range(50):  # 500 requests of 10 events, 10 at a time
            prefixes = [f"w{wave}r{r}" for r in range(10)]
            results = await asyncio.gather(*(post(running, batch(p, 10)) for p in prefixes))
            answers.update(zip(prefixes, results, strict=True))
        taken = {p for p, (status, _) in answers.items() if status == 200}
        refused = {p: retry_after for p, (status, retry_after) in answers.items() if status == 503}
        assert 1000 <= 10 * len(taken) < 1010, len(taken)
        assert len(taken) + len(refused) == 500
        assert set(refused.values()) == {"10"}
        assert stored_ids(running) == {f"{p}-{i}" for p in taken for i in range(10)}
        assert await ready(running) == [(503, {"ready": False, "reason": "backlog_full"})] * 2

        down_platform.default = Answer()  # the platform is back
        delivered: set[str] = set()

        def drained() -> bool:
            delivered.update(
                e["event_id"] for r in down_platform.requests for e in r.json()["events"]
            )
            return len(delivered & stored_ids(running)) == 10 * len(taken)

        assert await until(drained, lambda: clock.advance(1.0))
        assert await until(lambda: running.app.outbox.backlog.of_store("shop") == 0, lambda: None)
        assert await ready(running) == [(200, {"ready": True, "reason": None})] * 2
        assert (await post(running, batch("after", 10)))[0] == 200
    finally:
        await running.stop()


async def test_below_the_disk_floor_ingest_answers_503_and_readyz_says_low_disk(
    tmp_path: Path, down_platform: FakePlatform, clock: FakeClock
) -> None:
    """With less free space than min_free_disk_mb, ingest answers 503 with Retry-After before
    storing anything and /readyz says low_disk; with space back, events are taken again."""
    config = write_config_dir(tmp_path, STORE.format(url=down_platform.url))
    running = RunningTagless(with_outbox(config, "min_free_disk_mb: 512"), clock=clock)
    free = {"bytes": 100 * MB}
    running.app.outbox.room.disk.free_bytes = lambda path: free["bytes"]
    await running.start()
    try:
        assert await post(running, batch("low", 3)) == (503, "30")
        assert stored_ids(running) == set()
        assert await ready(running) == [(503, {"ready": False, "reason": "low_disk"})] * 2
        free["bytes"] = 600 * MB
        clock.advance(1.0)
        assert await post(running, batch("ok", 3)) == (200, None)
        assert await ready(running) == [(200, {"ready": True, "reason": None})] * 2
    finally:
        await running.stop()


async def test_refused_requests_are_logged_once_per_interval_with_their_count(
    tmp_path: Path, down_platform: FakePlatform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of refused requests leaves one ingest_backpressure line per store and interval,
    carrying how many were refused, not one line per request."""
    from structlog.testing import capture_logs

    config = write_config_dir(tmp_path, STORE.format(url=down_platform.url))
    running = RunningTagless(with_outbox(config, "min_free_disk_mb: 512"), clock=clock)
    running.app.outbox.room.disk.free_bytes = lambda path: 0
    await running.start()
    try:
        now = {"t": 1000.0}
        monkeypatch.setattr("router.ingest.http.monotonic", lambda: now["t"])
        with capture_logs() as logs:
            for i in range(40):
                assert (await post(running, batch(f"r{i}", 1)))[0] == 503
            now["t"] += 10.0
            assert (await post(running, batch("later", 1)))[0] == 503
    finally:
        await running.stop()
    lines = [line for line in logs if line["event"] == "ingest_backpressure"]
    assert [(line["store"], line["refused"]) for line in lines] == [("shop", 1), ("shop", 40)]
