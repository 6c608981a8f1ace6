"""A Tagless whose config names a PostgreSQL outbox: an event posted to /v1/batch reaches the
webhook through the database, and the schema is Tagless's own, versioned and guarded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from router.outbox.migrations import SCHEMA_VERSION
from router.startup import StartupError
from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir


def store_yaml(platform: FakePlatform) -> str:
    return (
        "store: shop\nwrite_keys: [shop-key]\ndestinations:\n"
        f"  - {{id: hook, type: webhook, url: '{platform.url}/hook'}}\n"
    )


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    db = await asyncpg.connect(url)
    try:
        return list(await db.fetch(sql))
    finally:
        await db.close()


async def test_an_event_from_v1_batch_reaches_the_webhook_through_postgresql(
    tmp_path: Path, pg_url: str, platform: FakePlatform
) -> None:
    """200 only once the event is in PostgreSQL; the webhook gets it; the destination's cursor
    in the database moves past it."""
    config = write_config_dir(tmp_path, store_yaml(platform), outbox_url=pg_url)
    tagless = await RunningTagless(config).start()
    try:
        event = {"type": "track", "event": "Order Completed", "messageId": "pg-1", "userId": "u-1"}
        batch = {"batch": [event | {"properties": {"revenue": 12.5, "currency": "EUR"}}]}
        status, answer = await tagless.post("/v1/batch", batch, key="shop-key")
        assert (status, answer) == (200, {"success": True})
        [stored] = await fetch(pg_url, "SELECT event_id, routes FROM events")
        assert (stored["event_id"], stored["routes"]) == ("pg-1", " hook ")
        for _ in range(3000):
            if platform.delivered_events():
                break
            await asyncio.sleep(0.01)
        assert [e["event_id"] for e in platform.delivered_events()] == ["pg-1"]
        for _ in range(3000):
            cursors = await fetch(pg_url, "SELECT destination, seq FROM cursors")
            if cursors == [("hook", 1)]:
                break
            await asyncio.sleep(0.01)
        assert [tuple(row) for row in cursors] == [("hook", 1)]
    finally:
        await tagless.stop()


async def test_the_schema_is_created_at_the_shared_version_and_a_newer_one_is_refused(
    tmp_path: Path, pg_url: str, platform: FakePlatform
) -> None:
    """A first start creates the schema at the version SQLite files carry too; a database
    a newer Tagless wrote stops the start with a message saying so, having changed nothing."""
    config = write_config_dir(tmp_path, store_yaml(platform), outbox_url=pg_url)
    tagless = await RunningTagless(config).start()
    await tagless.stop()
    assert await fetch(pg_url, "SELECT version FROM tagless_schema") == [(SCHEMA_VERSION,)]
    await fetch(pg_url, f"UPDATE tagless_schema SET version = {SCHEMA_VERSION + 1}")  # noqa: S608 - a number
    with pytest.raises(StartupError, match="written by a newer Tagless"):
        await RunningTagless(config).start()
    assert await fetch(pg_url, "SELECT version FROM tagless_schema") == [(SCHEMA_VERSION + 1,)]
