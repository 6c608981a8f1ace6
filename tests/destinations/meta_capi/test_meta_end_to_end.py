"""Through the running server: Segment events in, hashed Meta events out, a bad one isolated.

Needs ``meta_capi`` registered in the ``tagless.destinations`` entry-point group (pyproject)
and the package reinstalled (``pip install -e .``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_meta import PIXEL, TOKEN, VERSION, FakeMeta

from router.plugins import discover
from router.testing.server import RunningTagless, write_config_dir

STORE_YAML = """\
store: shop
write_keys: [shop-key]
client_ip: {{trusted_proxies: [127.0.0.1/32]}}
destinations:
  - id: meta
    type: meta_capi
    pixel_id: "{pixel}"
    access_token: ${{META_TOKEN}}
    endpoint: "{url}"
    api_version: {version}
    retry: {{max_attempts: 3}}
"""


def order(message_id: str, currency: str = "EUR") -> dict[str, Any]:
    """A Segment 'Order Completed' from a browser a minute ago, with identity."""
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": "customer-1",
        "timestamp": moment.isoformat(),
        "properties": {"order_id": message_id, "revenue": 12.5, "currency": currency},
        "context": {
            "ip": "81.2.69.142",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            "page": {"url": "https://shop.example/checkout/thanks"},
            "traits": {"email": " Jane@Example.com", "phone": "+44 20 7946 0958"},
        },
    }


@pytest.fixture
async def running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningTagless, FakeMeta]]:
    assert "meta_capi" in discover(), (
        'meta_capi is not registered: add meta_capi = "destinations.meta_capi:plugin" under'
        ' [project.entry-points."tagless.destinations"] and run pip install -e .'
    )
    monkeypatch.setenv("META_TOKEN", TOKEN)
    meta = FakeMeta()
    async with meta.platform:
        store = STORE_YAML.format(pixel=PIXEL, url=meta.platform.url, version=VERSION)
        server = RunningTagless(write_config_dir(tmp_path / "cfg", store))
        await server.start()
        try:
            yield server, meta
        finally:
            await server.stop()


async def settled(server: RunningTagless, meta: FakeMeta, delivered: int, dead: int) -> list[Any]:
    """Wait until Meta holds ``delivered`` events and ``dead`` are dead-lettered."""
    for _ in range(500):
        letters = await server.app.outbox.dead_letters("shop", "meta")
        if len(meta.received) >= delivered and len(letters) >= dead:
            return letters
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(meta.received)} delivered, {len(letters)} dead")


async def test_events_arrive_hashed_and_a_bad_one_is_isolated(
    running: tuple[RunningTagless, FakeMeta],
) -> None:
    """Of six events, the one Meta refuses is dead-lettered; the five others arrive hashed."""
    server, meta = running
    batch = [order(f"m-{i}") for i in range(5)]
    batch.insert(3, order("m-bad", currency="XYZ"))
    assert await server.post("/v1/batch", {"batch": batch}, key="shop-key") == (
        200,
        {"success": True},
    )

    [letter] = await settled(server, meta, delivered=5, dead=1)
    assert (letter.event_id, letter.reason, letter.last_status) == ("m-bad", "meta_100", 400)
    assert TOKEN not in letter.detail
    assert sorted(e["event_id"] for e in meta.received) == [f"m-{i}" for i in range(5)]
    first = meta.received[0]
    assert (first["event_name"], first["action_source"]) == ("Purchase", "website")
    users = first["user_data"]
    assert users["em"] == [hashlib.sha256(b"jane@example.com").hexdigest()]
    assert users["ph"] == [hashlib.sha256(b"442079460958").hexdigest()]
    assert users["client_ip_address"] == "81.2.69.142"
    assert first["custom_data"]["value"] == 12.5
