"""Routing through a running Tagless: identity calls never reach an ad platform, filters
match the sender's own event name, and the store's value_from picks the value."""

from __future__ import annotations

import asyncio
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
value_from: [revenue, total]
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
  - {{id: hook, type: webhook, url: "{hook}/all"}}
  - id: gifts
    type: webhook
    url: "{hook}/gifts"
    events: {{allow: [purchase, "Gift Card Redeemed"]}}
  - id: no-gifts
    type: webhook
    url: "{hook}/no-gifts"
    events: {{deny: ["Gift Card Redeemed", identify, alias, group]}}
"""


@attrs.frozen
class Platforms:
    spotify: FakePlatform
    meta: FakeMeta
    hook: FakePlatform


@pytest.fixture
async def platforms(tmp_path: Path) -> AsyncIterator[tuple[Platforms, Path]]:
    """Fake Spotify, Meta and a webhook sink, and a config dir with one store aimed at them."""
    async with AsyncExitStack() as stack:
        running = Platforms(
            spotify=await stack.enter_async_context(FakePlatform(responder=SpotifyRules())),
            meta=FakeMeta(),
            hook=await stack.enter_async_context(FakePlatform()),
        )
        await stack.enter_async_context(running.meta.platform)
        store = STORE.format(
            connection_id=CONNECTION_ID, spotify=running.spotify.url, spotify_token=SPOTIFY_TOKEN,
            pixel=PIXEL,
            meta_token=META_TOKEN, meta=running.meta.platform.url, version=VERSION,
            hook=running.hook.url,
        )  # fmt: skip
        yield running, write_config_dir(tmp_path / "config", store)


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def call(kind: str, message_id: str, **fields: Any) -> dict[str, Any]:
    context = {
        "ip": "81.2.69.142",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        "traits": {"email": "jane@example.com"},
        "page": {"url": "https://shop.example/thanks"},
    }
    return {"type": kind, "messageId": message_id, "userId": "u-1", "context": context, **fields}


def hook_events(hook: FakePlatform, path: str) -> dict[str, str]:
    """event_id -> canonical name of every event the webhook sink got at ``path``."""
    return {
        e["event_id"]: e["name"]
        for seen in hook.requests
        if seen.path == path
        for e in seen.json()["events"]
    }


async def test_identity_calls_reach_only_destinations_that_take_them(
    platforms: tuple[Platforms, Path],
) -> None:
    """identify, alias and group reach the webhook under their own names, never Spotify or
    Meta (an alias once reached Meta as a custom conversion named "alias"); a purchase
    sent with them reaches all three."""
    fakes, config_dir = platforms
    batch = [
        call("identify", "m-identify", traits={"plan": "pro"}),
        call("alias", "m-alias", previousId="anon-1"),
        call("group", "m-group", groupId="acme"),
        call(
            "track",
            "m-purchase",
            event="Order Completed",
            properties={"total": 10, "currency": "EUR"},
        ),
    ]
    tagless = await RunningTagless(config_dir).start()
    try:
        assert (await tagless.post("/v1/batch", {"batch": batch}, key="shop-key"))[0] == 200
        await until(lambda: len(hook_events(fakes.hook, "/all")) == 4, "the webhook got all")
        await until(lambda: len(fakes.meta.received) >= 1, "Meta got the purchase")
        await until(lambda: len(fakes.spotify.requests) >= 1, "Spotify got the purchase")
        await asyncio.sleep(0.3)  # anything else sent would have arrived by now
    finally:
        await tagless.stop()
    assert hook_events(fakes.hook, "/all") == {
        "m-identify": "identify",
        "m-alias": "alias",
        "m-group": "group",
        "m-purchase": "purchase",
    }
    assert [e["event_id"] for e in fakes.meta.received] == ["m-purchase"]
    spotify = [
        e["event_id"]
        for seen in fakes.spotify.requests
        for e in seen.json()["conversion_events"]["events"]
    ]
    assert spotify == ["m-purchase"]


async def test_filters_match_the_senders_own_event_name(
    platforms: tuple[Platforms, Path],
) -> None:
    """Two custom events are told apart by the name their sender gave them: an allow entry
    admits one, a deny entry keeps it out, and canonical entries still match canonical names."""
    fakes, config_dir = platforms
    batch = [
        call("track", "m-gift", event="Gift Card Redeemed"),
        call("track", "m-wish", event="Wishlist Shared"),
        call("track", "m-order", event="Order Completed"),
        call("identify", "m-identify"),
    ]
    tagless = await RunningTagless(config_dir).start()
    try:
        assert (await tagless.post("/v1/batch", {"batch": batch}, key="shop-key"))[0] == 200
        await until(lambda: len(hook_events(fakes.hook, "/all")) == 4, "the webhook got all")
        await until(lambda: len(hook_events(fakes.hook, "/gifts")) == 2, "gifts got two")
        await until(lambda: len(hook_events(fakes.hook, "/no-gifts")) == 2, "no-gifts got two")
        await asyncio.sleep(0.3)
    finally:
        await tagless.stop()
    assert hook_events(fakes.hook, "/gifts") == {"m-gift": "custom", "m-order": "purchase"}
    assert hook_events(fakes.hook, "/no-gifts") == {"m-wish": "custom", "m-order": "purchase"}


async def test_the_stores_value_from_picks_the_value_every_destination_sends(
    platforms: tuple[Platforms, Path],
) -> None:
    """With ``value_from: [revenue, total]`` an order with both sends its revenue to Meta,
    Spotify and the webhook alike."""
    fakes, config_dir = platforms
    properties = {"total": 100, "revenue": 90, "currency": "EUR"}
    order = call("track", "m-order", event="Order Completed", properties=properties)
    tagless = await RunningTagless(config_dir).start()
    try:
        assert (await tagless.post("/v1/track", order, key="shop-key"))[0] == 200
        await until(lambda: len(hook_events(fakes.hook, "/all")) == 1, "the webhook got it")
        await until(lambda: len(fakes.meta.received) == 1, "Meta got it")
        await until(lambda: len(fakes.spotify.requests) == 1, "Spotify got it")
    finally:
        await tagless.stop()
    [hook] = [
        e for seen in fakes.hook.requests if seen.path == "/all" for e in seen.json()["events"]
    ]
    [spotify] = fakes.spotify.requests[0].json()["conversion_events"]["events"]
    assert hook["value"] == "90"
    assert fakes.meta.received[0]["custom_data"]["value"] == 90
    assert spotify["event_details"]["amount"] == 90
