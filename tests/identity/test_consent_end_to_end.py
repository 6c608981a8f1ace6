"""Consent categories end to end: a OneTrust or RudderStack denial keeps a purchase from Spotify
and Meta, counted as skipped_consent and never dead-lettered; a grant sends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
write_keys: [shop-key]
destinations:
  - id: spotify
    type: spotify_capi
    connection_id: "{connection_id}"
    token: ${{SPOTIFY_TOKEN}}
    endpoint: "{spotify}"
    consent: {spotify_consent}
  - id: meta
    type: meta_capi
    pixel_id: "{pixel}"
    access_token: ${{META_TOKEN}}
    endpoint: "{meta}"
    api_version: {version}
    consent: {meta_consent}
"""
SECRETS = {"SPOTIFY_TOKEN": SPOTIFY_TOKEN, "META_TOKEN": META_TOKEN}

#: The shipped defaults (Spotify keeps the conversion without user data on a denial) and the
#: issue's Meta ``denied: skip``: C0004 means ad_user_data by the default category map.
SIGNAL_POLICIES = ("{}", "{denied: skip}")
#: Both destinations listing OneTrust's targeting group: sent only when it is granted.
CATEGORY_POLICIES = ("{categories: [C0004]}", "{categories: [C0004]}")


def onetrust(targeting: bool) -> dict[str, Any]:
    """Segment's consent object as OneTrust's integration fills it (groups C0001-C0005)."""
    groups = {"C0001": True, "C0002": True, "C0003": True, "C0004": targeting, "C0005": False}
    return {"consent": {"categoryPreferences": groups}}


def rudderstack(targeting: bool) -> dict[str, Any]:
    """RudderStack's consentManagement as its OneTrust integration fills it."""
    allowed, denied = ["C0001", "C0002"], ["C0005"]
    (allowed if targeting else denied).append("C0004")
    return {
        "consentManagement": {
            "provider": "oneTrust",
            "allowedConsentIds": allowed,
            "deniedConsentIds": denied,
        }
    }


def purchase(event_id: str, consent: dict[str, Any]) -> dict[str, Any]:
    """A purchase from the store's backend, with the customer's IP, identity and cookies."""
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": event_id,
        "userId": "customer-1",
        "context": {
            "ip": "81.2.69.142",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            "page": {"url": "https://shop.example/checkout/thanks"},
            "traits": {"email": "jane@example.com"},
            "cookies": {"_fbp": "fb.1.17.12"},
            **consent,
        },
        "properties": {"order_id": event_id, "total": "42.00", "currency": "EUR"},
    }


@pytest.fixture
async def platforms() -> AsyncIterator[tuple[FakePlatform, FakeMeta]]:
    async with AsyncExitStack() as stack:
        spotify = await stack.enter_async_context(FakePlatform(responder=SpotifyRules()))
        meta = FakeMeta()
        await stack.enter_async_context(meta.platform)
        yield spotify, meta


async def until(check: Any, what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.parametrize("dialect", [onetrust, rudderstack])
@pytest.mark.parametrize(
    ("policies", "reasons"),
    [
        (SIGNAL_POLICIES, {"spotify": "no_user_identifier", "meta": "consent_denied"}),
        (CATEGORY_POLICIES, {"spotify": "consent_denied", "meta": "consent_denied"}),
    ],
    ids=["signal_policy", "category_policy"],
)
async def test_targeting_denied_reaches_neither_spotify_nor_meta_and_is_no_dead_letter(
    tmp_path: Path,
    platforms: tuple[FakePlatform, FakeMeta],
    dialect: Any,
    policies: tuple[str, str],
    reasons: dict[str, str],
) -> None:
    """Of two purchases, the one whose targeting category (C0004) is denied is sent to neither
    platform and counted skipped_consent per destination, with no dead letter; the granted one
    reaches both."""
    spotify, meta = platforms
    store = STORE.format(
        connection_id=CONNECTION_ID, spotify=spotify.url, spotify_consent=policies[0],
        pixel=PIXEL, meta=meta.platform.url, version=VERSION, meta_consent=policies[1],
    )  # fmt: skip
    tagless = await RunningTagless(write_config_dir(tmp_path, store), env=SECRETS).start()
    try:
        batch = [purchase("granted", dialect(True)), purchase("denied", dialect(False))]
        answer = await tagless.post("/v1/batch", {"batch": batch}, key="shop-key")
        assert answer == (200, {"success": True})
        skipped = tagless.app.metrics.skipped_consent
        await until(lambda: len(meta.received) >= 1, "Meta received the granted purchase")
        await until(lambda: len(spotify.requests) >= 1, "Spotify got the granted purchase")
        await until(lambda: sum(skipped.values()) >= 2, "both destinations skipped one")
        await asyncio.sleep(0.2)  # anything else sent would have arrived by now
        letters = [await tagless.app.outbox.dead_letters("shop", d) for d in ("spotify", "meta")]
    finally:
        await tagless.stop()

    assert [e["event_id"] for e in meta.received] == ["granted"]
    assert meta.received[0]["user_data"]["client_ip_address"] == "81.2.69.142"
    [sent] = [seen.json() for seen in spotify.requests]
    [event] = sent["conversion_events"]["events"]
    assert (event["event_id"], event["user_data"]["ip_address"]) == ("granted", "81.2.69.142")
    assert letters == [[], []]
    assert dict(skipped) == {("shop", dest, reason): 1 for dest, reason in reasons.items()}
