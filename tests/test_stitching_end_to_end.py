"""Identity stitching through a running Tagless: a server callback without the customer's IP
reaches Spotify and Meta with what the customer's page view carried."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir
from tests.destinations.meta_capi.fake_meta import PIXEL, VERSION, FakeMeta
from tests.destinations.meta_capi.fake_meta import TOKEN as META_TOKEN
from tests.destinations.spotify_capi.conftest import CONNECTION_ID, SpotifyRules
from tests.destinations.spotify_capi.conftest import TOKEN as SPOTIFY_TOKEN

STORE = """\
store: shop
write_keys: [shop-key]
stitching: {{enabled: true, window_hours: {window_hours}}}
destinations:
  - id: spotify
    type: spotify_capi
    connection_id: "{connection_id}"
    token: "{spotify_token}"
    endpoint: "{spotify}"
  - id: meta
    type: meta_capi
    pixel_id: "{pixel}"
    access_token: "{meta_token}"
    endpoint: "{meta}"
    api_version: {version}
  - {{id: hook, type: webhook, url: "{hook}/all", consent: {{denied: send}}}}
"""
CUSTOMER_IP = "81.2.69.142"
USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"


@attrs.frozen
class Platforms:
    spotify: FakePlatform
    meta: FakeMeta
    hook: FakePlatform


@pytest.fixture
async def platforms(tmp_path: Path) -> AsyncIterator[tuple[Platforms, Callable[[float], Path]]]:
    """Fake Spotify, Meta and a webhook, and a maker of config dirs for a stitching window."""
    async with AsyncExitStack() as stack:
        running = Platforms(
            spotify=await stack.enter_async_context(FakePlatform(responder=SpotifyRules())),
            meta=FakeMeta(),
            hook=await stack.enter_async_context(FakePlatform()),
        )
        await stack.enter_async_context(running.meta.platform)

        def config(window_hours: float) -> Path:
            store = STORE.format(
                window_hours=window_hours, connection_id=CONNECTION_ID,
                spotify=running.spotify.url, spotify_token=SPOTIFY_TOKEN, pixel=PIXEL,
                meta_token=META_TOKEN, meta=running.meta.platform.url, version=VERSION,
                hook=running.hook.url,
            )  # fmt: skip
            return write_config_dir(tmp_path / "config", store)

        yield running, config


def page_view() -> dict[str, Any]:
    """The customer's browser: a public IP, a user agent and Meta's _fbp cookie."""
    return {
        "type": "page",
        "messageId": "pv-1",
        "anonymousId": "anon-1",
        "name": "Checkout",
        "context": {
            "ip": CUSTOMER_IP,
            "userAgent": USER_AGENT,
            "page": {"url": "https://shop.example/checkout"},
            "cookies": {"_fbp": "fb.1.1763650000.1234567890"},
            "traits": {"email": "jane@example.com"},
        },
    }


def gateway_purchase(consent: dict[str, str] | None = None) -> dict[str, Any]:
    """The payment gateway's server callback: same anonymousId, no IP, no user agent."""
    context: dict[str, Any] = {"page": {"url": "https://shop.example/checkout/thanks"}}
    if consent is not None:
        context["consent"] = consent
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": "buy-1",
        "anonymousId": "anon-1",
        "properties": {"order_id": "WC-1", "total": 59.9, "currency": "EUR"},
        "context": context,
    }


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def hooked(hook: FakePlatform) -> dict[str, dict[str, Any]]:
    return {e["event_id"]: e for seen in hook.requests for e in seen.json()["events"]}


async def send_both(config_dir: Path, fakes: Platforms, purchase: dict[str, Any]) -> str:
    """Post the page view, then the purchase; wait until every platform has both; return
    the metrics text."""
    tagless = await RunningTagless(config_dir).start()
    try:
        assert (await tagless.post("/v1/page", page_view(), key="shop-key"))[0] == 200
        await until(lambda: "pv-1" in hooked(fakes.hook), "the webhook got the page view")
        assert (await tagless.post("/v1/track", purchase, key="shop-key"))[0] == 200
        await until(lambda: "buy-1" in hooked(fakes.hook), "the webhook got the purchase")
        await until(lambda: len(fakes.meta.received) >= 2, "Meta got both")
        await until(lambda: len(fakes.spotify.requests) >= 2, "Spotify got both")
        return tagless.app.metrics.exposition().decode()
    finally:
        await tagless.stop()


async def test_a_server_purchase_gets_the_page_views_ip_and_fbp(
    platforms: tuple[Platforms, Callable[[float], Path]],
) -> None:
    """Spotify and Meta receive the purchase with the page view's IP and fbp (and user
    agent), the stored event says stitched from the page view, and /metrics counts it."""
    fakes, config = platforms
    exposed = await send_both(config(24), fakes, gateway_purchase())
    buy = hooked(fakes.hook)["buy-1"]
    assert (buy["client_ip"], buy["client_ip_origin"], buy["stitched_from"]) == (
        CUSTOMER_IP,
        "stitched",
        "pv-1",
    )
    [meta] = [e for e in fakes.meta.received if e["event_id"] == "buy-1"]
    assert meta["user_data"]["client_ip_address"] == CUSTOMER_IP
    assert meta["user_data"]["fbp"] == "fb.1.1763650000.1234567890"
    assert meta["user_data"]["client_user_agent"] == USER_AGENT
    [spotify] = [
        e
        for seen in fakes.spotify.requests
        for e in seen.json()["conversion_events"]["events"]
        if e["event_id"] == "buy-1"
    ]
    assert spotify["user_data"]["ip_address"] == CUSTOMER_IP
    assert 'tagless_events_stitched_total{store="shop"} 1.0' in exposed
    assert (
        'tagless_events_client_ip_total{ip_class="public",origin="stitched",store="shop"} 1.0'
    ) in exposed


async def test_consent_denied_on_the_purchase_fills_nothing(
    platforms: tuple[Platforms, Callable[[float], Path]],
) -> None:
    """A purchase whose ad_user_data is denied keeps its missing IP: consent is the
    purchase's own, whatever the page view allowed."""
    fakes, config = platforms
    tagless = await RunningTagless(config(24)).start()
    try:
        assert (await tagless.post("/v1/page", page_view(), key="shop-key"))[0] == 200
        await until(lambda: "pv-1" in hooked(fakes.hook), "the webhook got the page view")
        denied = gateway_purchase({"ad_user_data": "denied"})
        assert (await tagless.post("/v1/track", denied, key="shop-key"))[0] == 200
        await until(lambda: "buy-1" in hooked(fakes.hook), "the webhook got the purchase")
        exposed = tagless.app.metrics.exposition().decode()
    finally:
        await tagless.stop()
    buy = hooked(fakes.hook)["buy-1"]
    assert (buy["client_ip_origin"], buy["stitched_from"], buy["user_agent"]) == (
        "peer",
        None,
        None,
    )
    assert all(e.get("event_id") != "buy-1" or "fbp" not in e["user_data"]
               for e in fakes.meta.received)  # fmt: skip
    assert "tagless_events_stitched_total{" not in exposed


async def test_outside_the_window_fills_nothing(
    platforms: tuple[Platforms, Callable[[float], Path]],
) -> None:
    """With a window shorter than the time between the two events, the purchase keeps its
    missing IP."""
    fakes, config = platforms
    tagless = await RunningTagless(config(0.0001)).start()  # 0.36 seconds
    try:
        assert (await tagless.post("/v1/page", page_view(), key="shop-key"))[0] == 200
        await until(lambda: "pv-1" in hooked(fakes.hook), "the webhook got the page view")
        await asyncio.sleep(0.5)
        assert (await tagless.post("/v1/track", gateway_purchase(), key="shop-key"))[0] == 200
        await until(lambda: "buy-1" in hooked(fakes.hook), "the webhook got the purchase")
    finally:
        await tagless.stop()
    buy = hooked(fakes.hook)["buy-1"]
    assert (buy["client_ip_origin"], buy["stitched_from"]) == ("peer", None)


async def test_events_of_one_request_are_stitched_against_what_was_committed_before(
    platforms: tuple[Platforms, Callable[[float], Path]],
) -> None:
    """A batch of the page view and the purchase fills nothing (the look-up reads committed
    events only), while the ids both are found by are stored beside them."""
    fakes, config = platforms
    tagless = await RunningTagless(config(24)).start()
    try:
        batch = {"batch": [page_view(), gateway_purchase()]}
        assert (await tagless.post("/v1/batch", batch, key="shop-key"))[0] == 200
        await until(lambda: "buy-1" in hooked(fakes.hook), "the webhook got the purchase")
        with sqlite3.connect(tagless.app.config.outbox.path) as db:
            rows = db.execute("SELECT event_id, anonymous_id, user_id FROM events ORDER BY seq")
            stored = rows.fetchall()
    finally:
        await tagless.stop()
    assert hooked(fakes.hook)["buy-1"]["stitched_from"] is None
    assert stored == [("pv-1", "anon-1", None), ("buy-1", "anon-1", None)]
