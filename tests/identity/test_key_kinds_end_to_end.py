"""Write key kinds through the running server to fake Spotify and Meta: a server key's TCP peer
never goes out as the customer's IP; a browser key's context.ip is ignored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir
from tests.destinations.meta_capi.fake_meta import PIXEL, VERSION, FakeMeta
from tests.destinations.meta_capi.fake_meta import TOKEN as META_TOKEN
from tests.destinations.spotify_capi.conftest import CONNECTION_ID, SpotifyRules
from tests.destinations.spotify_capi.conftest import TOKEN as SPOTIFY_TOKEN

STORE = """\
store: shop
allowed_origins: [https://shop.example]
write_keys:
  - backend-key
  - {{key: page-key, kind: browser}}
destinations:
  - id: spotify
    type: spotify_capi
    connection_id: "{connection_id}"
    token: ${{SPOTIFY_TOKEN}}
    endpoint: "{spotify}"
  - id: meta
    type: meta_capi
    pixel_id: "{pixel}"
    access_token: ${{META_TOKEN}}
    endpoint: "{meta}"
    api_version: {version}
"""
SECRETS = {"SPOTIFY_TOKEN": SPOTIFY_TOKEN, "META_TOKEN": META_TOKEN}


def purchase(message_id: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": "customer-1",
        "context": {
            "traits": {"email": "jo@example.com"},
            "userAgent": "Mozilla/5.0",
            "page": {"url": "https://shop.example/thanks"},
            **context,
        },
        "properties": {"order_id": message_id, "total": "10.00", "currency": "EUR"},
    }


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[RunningTagless, FakePlatform, FakeMeta]]:
    async with AsyncExitStack() as stack:
        spotify = await stack.enter_async_context(FakePlatform(responder=SpotifyRules()))
        meta = FakeMeta()
        await stack.enter_async_context(meta.platform)
        store = STORE.format(
            connection_id=CONNECTION_ID, spotify=spotify.url,
            pixel=PIXEL, meta=meta.platform.url, version=VERSION,
        )  # fmt: skip
        tagless = await RunningTagless(
            write_config_dir(tmp_path / "config", store), SECRETS
        ).start()
        try:
            yield tagless, spotify, meta
        finally:
            await tagless.stop()


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def spotify_users(spotify: FakePlatform) -> list[dict[str, Any]]:
    return [
        event["user_data"]
        for seen in spotify.requests
        if seen.status < 300
        for event in seen.json()["conversion_events"]["events"]
    ]


async def metrics(tagless: RunningTagless) -> str:
    assert tagless.session is not None
    url = f"http://127.0.0.1:{tagless.app.ports['admin']}/metrics"
    async with tagless.session.get(url) as response:
        return await response.text()


async def test_a_server_key_purchase_without_context_ip_goes_out_with_no_ip(
    running: tuple[RunningTagless, FakePlatform, FakeMeta],
) -> None:
    """The backend's own address (the TCP peer) reaches neither Spotify nor Meta, and
    /metrics counts the event as origin peer, class own_server."""
    tagless, spotify, meta = running
    status, _ = await tagless.post("/v1/track", purchase("srv-1", {}), key="backend-key")
    assert status == 200
    await until(lambda: len(spotify_users(spotify)) == 1 and len(meta.received) == 1, "sent")

    [spotify_user] = spotify_users(spotify)
    [meta_event] = meta.received
    assert "ip_address" not in spotify_user and spotify_user["hashed_emails"]
    assert "client_ip_address" not in meta_event["user_data"]
    text = await metrics(tagless)
    assert (
        'tagless_events_client_ip_total{ip_class="own_server",origin="peer",store="shop"} 1.0'
        in text
    )


async def test_a_browser_keys_forged_context_ip_is_ignored(
    running: tuple[RunningTagless, FakePlatform, FakeMeta],
) -> None:
    """A page's context.ip is not believed: the event carries the connection's address (here
    loopback, so nothing is sent as the IP), never the claimed one."""
    tagless, spotify, meta = running
    message = purchase("page-1", {"ip": "81.2.69.142"})
    headers = {"Origin": "https://shop.example"}
    status, _ = await tagless.post("/v1/track", message, key="page-key", headers=headers)
    assert status == 200
    await until(lambda: len(spotify_users(spotify)) == 1 and len(meta.received) == 1, "sent")

    [spotify_user] = spotify_users(spotify)
    assert "ip_address" not in spotify_user
    assert "client_ip_address" not in meta.received[0]["user_data"]
    text = await metrics(tagless)
    assert (
        'tagless_events_client_ip_total{ip_class="loopback",origin="peer",store="shop"} 1.0' in text
    )
