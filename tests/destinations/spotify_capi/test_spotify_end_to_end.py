"""Events posted to a running Tagless reach the fake Spotify CAPI, mapped and accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir

STORE = """\
store: shop
write_keys: [shop-key]
client_ip: {{trusted_proxies: [127.0.0.1/32]}}
destinations:
  - id: spotify
    type: spotify_capi
    connection_id: "3f2b8c1e-0a4d-4e6f-9b7a-1c2d3e4f5a6b"
    token: capi-token-abc123
    endpoint: "{url}"
    max_batch_size: 2
    custom_events: {{"Gift Card Redeemed": CUSTOM_EVENT_1}}
"""


@pytest.fixture
async def running(tmp_path: Path, spotify: FakePlatform) -> AsyncIterator[RunningTagless]:
    config = write_config_dir(tmp_path, STORE.format(url=spotify.url))
    server = await RunningTagless(config).start()
    yield server
    await server.stop()


def message(message_id: str, event: str, ip: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": "2026-11-20T14:30:05.123Z",
        "userId": "customer-1",
        "properties": properties,
        "context": {
            "ip": ip,
            "traits": {"email": "Jane@Example.com"},
            "cookies": {"_spdt": "spdt-device-1"},
            "page": {"url": "https://shop.example/thanks"},
        },
    }


async def delivered(spotify: FakePlatform, count: int) -> list[dict[str, Any]]:
    for _ in range(500):
        events = [
            event
            for seen in spotify.requests
            if seen.status == 200
            for event in seen.json()["conversion_events"]["events"]
        ]
        if len(events) >= count:
            return events
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(events)} of {count} events delivered")


async def test_batch_reaches_spotify_mapped(running: RunningTagless, spotify: FakePlatform) -> None:
    """A /v1/batch of a purchase, a custom event and a private-IP lead arrives as CAPI events."""
    batch = [
        message("m-1", "Order Completed", "81.2.69.142", revenue=42.5, currency="EUR"),
        message("m-2", "Gift Card Redeemed", "81.2.69.142"),
        message("m-3", "Lead Generated", "192.168.0.12"),
    ]
    status, _ = await running.post("/v1/batch", {"batch": batch}, key="shop-key")
    assert status == 200
    events = {e["event_id"]: e for e in await delivered(spotify, 3)}
    assert {k: v["event_name"] for k, v in events.items()} == {
        "m-1": "PURCHASE",
        "m-2": "CUSTOM_EVENT_1",
        "m-3": "LEAD",
    }
    assert events["m-1"]["event_details"] == {"amount": 42.5, "currency": "EUR"}
    assert events["m-1"]["user_data"]["ip_address"] == "81.2.69.142"
    assert events["m-1"]["user_data"]["device_id"] == "spdt-device-1"
    assert "ip_address" not in events["m-3"]["user_data"]
    assert all(len(seen.json()["conversion_events"]["events"]) <= 2 for seen in spotify.requests)
    [lane] = running.app.dispatchers
    assert lane.destination.ip_withheld == {"private": 1}  # type: ignore[attr-defined]
    exposed = running.app.metrics.exposition().decode()
    assert (
        'tagless_destination_events_total{counter="ip_withheld_private",'
        'destination="spotify",store="shop"} 1.0'
    ) in exposed
