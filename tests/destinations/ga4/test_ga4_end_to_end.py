"""GA4 through a running Tagless: Segment events in, validated GA4 requests out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from destinations.ga4 import Ga4Destination
from router.plugins import discover
from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir

STORE = """\
store: shop
write_keys: [shop-key]
destinations:
  - {{id: ga4, type: ga4, measurement_id: G-TEST1234, api_secret: "${{GA4_SECRET}}",
     endpoint: "{url}", validate: true}}
"""


@pytest.fixture
async def tagless(tmp_path: Path, ga4: FakePlatform) -> AsyncIterator[RunningTagless]:
    config = write_config_dir(tmp_path, STORE.format(url=ga4.url))
    running = RunningTagless(config, env={"GA4_SECRET": "s3cret"})
    await running.start()
    yield running
    await running.stop()


def order(n: int, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": f"msg-{n}",
        "userId": f"customer-{n % 2}",
        "timestamp": datetime.now(UTC).isoformat(),
        "context": {"traits": {"email": f"buyer{n}@example.com"}, "ga_client_id": f"{n % 2}.1"},
        "properties": {"revenue": 10 + n, "currency": "EUR", **properties},
    }


async def collected(ga4: FakePlatform, count: int) -> list[dict[str, Any]]:
    for _ in range(500):
        events = [
            event
            for seen in ga4.requests
            if seen.path == "/mp/collect"
            for event in seen.json()["events"]
        ]
        if len(events) >= count:
            return events
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(events)} of {count} events reached /mp/collect")


async def test_valid_events_arrive_and_a_bad_one_is_dead_lettered(
    tagless: RunningTagless, ga4: FakePlatform
) -> None:
    """Orders reach /mp/collect after validation; one without order_id is dead-lettered alone."""
    batch = [order(n, order_id=f"WC-{n}") for n in range(6)] + [order(99)]
    assert await tagless.post("/v1/batch", {"batch": batch}, key="shop-key") == (
        200,
        {"success": True},
    )
    events = await collected(ga4, 6)
    assert sorted(e["params"]["transaction_id"] for e in events) == [f"WC-{n}" for n in range(6)]
    assert {e["name"] for e in events} == {"purchase"}
    assert all(r.query["api_secret"] == "s3cret" for r in ga4.requests)
    assert {r.json()["client_id"] for r in ga4.requests if r.path == "/mp/collect"} <= {
        "0.1",
        "1.1",
    }
    debug = [r for r in ga4.requests if r.path == "/debug/mp/collect"]
    assert debug, "validate: true checks every request first"
    for _ in range(100):
        dead = await tagless.app.outbox.dead_letters("shop", "ga4")
        if dead:
            break
        await asyncio.sleep(0.02)
    assert [(d.event_id, d.reason) for d in dead] == [("msg-99", "missing_transaction_id")]


def test_ga4_loads_through_the_entry_point_group() -> None:
    """ga4 is discovered like any plugin (needs its line in pyproject.toml, then pip install)."""
    assert discover()["ga4"] is Ga4Destination
