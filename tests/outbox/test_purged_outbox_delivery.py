"""Events acknowledged after retention purged the whole outbox are still delivered."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir

STORE = """\
store: shop
write_keys: [shop-key]
client_ip: {{trusted_proxies: [127.0.0.1/32]}}
destinations:
  - {{id: hook, type: webhook, url: "{url}/hook", max_batch_size: 100}}
"""


def delivered_ids(platform: FakePlatform) -> list[str]:
    return [event["event_id"] for r in platform.requests for event in r.json()["events"]]


def stored_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


async def until(check: Callable[[], bool], within: float = 20.0) -> bool:
    """Poll ``check()`` every 20 ms for at most ``within`` seconds; its last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def send(running: RunningTagless, prefix: str, count: int) -> list[int]:
    statuses = []
    for i in range(count):
        body = {"messageId": f"{prefix}-{i}", "userId": "u1", "event": "Order Completed"}
        status, _ = await running.post("/v1/track", body, key="shop-key")
        statuses.append(status)
    return statuses


async def test_events_acknowledged_after_a_full_purge_are_delivered(
    tmp_path: Path, platform: FakePlatform
) -> None:
    """The issue's repro: 200 events delivered and purged, then 50 more: all 50 delivered."""
    config = write_config_dir(tmp_path, STORE.format(url=platform.url))
    yaml = config / "tagless.yaml"
    yaml.write_text(
        yaml.read_text().replace(
            "outbox: {path: ", "outbox: {retention_hours: 0.0001, wal_checkpoint_secs: 0.1, path: "
        )
    )
    running = await RunningTagless(config).start()
    try:
        assert await send(running, "first", 200) == [200] * 200
        assert await until(lambda: len(delivered_ids(platform)) == 200)
        assert await until(lambda: stored_events(config / "tagless.db") == 0)
        assert await send(running, "second", 50) == [200] * 50
        await until(lambda: len(delivered_ids(platform)) == 250, within=10.0)
        late = [i for i in delivered_ids(platform) if i.startswith("second-")]
        assert sorted(late) == sorted(f"second-{i}" for i in range(50))
        status = await running.app.outbox.status("shop", ["hook"])
        assert status[0].pending == 0
    finally:
        await running.stop()
