"""Google Ads through a running Tagless: Segment events in, Data Manager requests out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fake_data_manager import FakeDataManager

from router.testing.google_token import LocalTokenServer
from router.testing.server import RunningTagless, write_config_dir

STORE = """\
store: shop
write_keys: [shop-key]
destinations:
  - id: ads
    type: google_ads
    customer_id: "1234567890"
    conversion_actions: {{purchase: "987654321", generate_lead: "987654322"}}
    credentials: {{service_account_file: "{key}"}}
    endpoint: "{url}"
    token_endpoint: "{tokens}"
"""


@pytest.fixture
async def tagless(
    tmp_path: Path, dm: FakeDataManager, tokens: LocalTokenServer, key_file: tuple[Path, Any]
) -> AsyncIterator[RunningTagless]:
    text = STORE.format(key=key_file[0], url=dm.platform.url, tokens=tokens.url)
    running = RunningTagless(write_config_dir(tmp_path, text))
    await running.start()
    yield running
    await running.stop()


def track(n: int, event: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": f"msg-{n}",
        "userId": "customer-1",
        "timestamp": datetime.now(UTC).isoformat(),
        "context": {"traits": {"email": "Buyer.One@gmail.com"}, "click_ids": {"gclid": f"Cj0-{n}"}},
        "properties": {"revenue": 10 + n, "currency": "EUR", **properties},
    }


async def received(dm: FakeDataManager, count: int) -> list[dict[str, Any]]:
    for _ in range(500):
        if len(dm.received) >= count:
            return dm.received
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(dm.received)} of {count} events reached events:ingest")


async def test_mapped_events_arrive_and_unmapped_ones_are_filtered(
    tagless: RunningTagless, dm: FakeDataManager
) -> None:
    """Purchases reach Data Manager; an add_to_cart without a conversion action is not routed:
    counted as unrouted, never sent, never a dead letter."""
    batch = [
        track(1, "Order Completed", order_id="WC-1"),
        track(2, "Product Added"),
        track(3, "Order Completed", order_id="WC-3"),
    ]
    status, _ = await tagless.post("/v1/batch", {"batch": batch}, key="shop-key")
    assert status == 200
    events = await received(dm, 2)
    assert sorted(e["transactionId"] for e in events) == ["WC-1", "WC-3"]
    assert {e["adIdentifiers"]["gclid"] for e in events} == {"Cj0-1", "Cj0-3"}
    assert all(len(e["userData"]["userIdentifiers"][0]["emailAddress"]) == 64 for e in events)
    await asyncio.sleep(0.1)
    assert len(dm.received) == 2
    assert tagless.app.metrics.unrouted["shop"] == 1
    [lane] = await tagless.app.outbox.status("shop", ["ads"])
    assert (lane.pending, lane.retrying, lane.dead) == (0, 0, 0)
