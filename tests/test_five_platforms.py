"""The README's five platforms in one store: one purchase posted to /v1/track reaches the fake
Spotify CAPI, Meta CAPI, Google Ads (Data Manager), GA4 and BigQuery, once each, each payload
as that platform's rules want it (every fake checks its platform's documented rules)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from router.testing.fake_platform import FakePlatform
from router.testing.google_token import LocalTokenServer, make_service_account
from router.testing.server import RunningTagless, write_config_dir

# The rule-checking fakes of each destination's own tests (Spotify's and GA4's live in their
# conftest modules).
from tests.destinations.bigquery.fake_bigquery import (
    DATASET,
    INSERT_PATH,
    PROJECT,
    TABLE,
    FakeBigQuery,
)
from tests.destinations.ga4.conftest import Ga4Fake
from tests.destinations.google_ads.fake_data_manager import CUSTOMER, FakeDataManager
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
  - id: meta
    type: meta_capi
    pixel_id: "{pixel}"
    access_token: ${{META_TOKEN}}
    endpoint: "{meta}"
    api_version: {version}
  - id: ads
    type: google_ads
    mode: data_manager
    customer_id: "{customer}"
    conversion_actions: {{purchase: "987654321"}}
    credentials: {{service_account_file: "{key}"}}
    endpoint: "{ads}"
    token_endpoint: "{tokens}"
  - id: ga4
    type: ga4
    measurement_id: G-TEST1234
    api_secret: ${{GA4_SECRET}}
    endpoint: "{ga4}"
  - id: warehouse
    type: bigquery
    project: {project}
    dataset: {dataset}
    table: {table}
    credentials: {{service_account_file: "{key}"}}
    endpoint: "{bigquery}"
    token_endpoint: "{tokens}"
"""
SECRETS = {"SPOTIFY_TOKEN": SPOTIFY_TOKEN, "META_TOKEN": META_TOKEN, "GA4_SECRET": "ga4-secret"}
CUSTOMER_IP = "81.2.69.142"
EMAIL = " John.Smith@Gmail.com "


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def purchase() -> dict[str, Any]:
    """An Order Completed from the store's backend, with the customer's IP, identity and a gclid."""
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": "evt-five-0001",
        "userId": "customer-48213",
        "timestamp": (datetime.now(UTC) - timedelta(minutes=2)).isoformat(),
        "context": {
            "ip": CUSTOMER_IP,
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
            "page": {"url": "https://shop.example/checkout/thanks"},
            "traits": {"email": EMAIL, "phone": "+44 20 7946 0958", "firstName": "John"},
            "click_ids": {"gclid": "Cj0KCQiA-five", "ga_client_id": "1234567890.1763650000"},
            "cookies": {"_spdt": "2b1c9f0e-6a5d-4c3b-9e8f-7a6b5c4d3e2f", "_fbp": "fb.1.17.12"},
            "consent": {"ad_user_data": "granted", "ad_personalization": "granted"},
        },
        "properties": {"order_id": "WC-10293", "revenue": "295.40", "currency": "EUR"},
    }


@attrs.frozen
class Fakes:
    spotify: FakePlatform
    meta: FakeMeta
    ads: FakeDataManager
    ga4: FakePlatform
    bigquery: FakeBigQuery
    tokens: LocalTokenServer


@pytest.fixture
async def fakes(tmp_path: Path) -> AsyncIterator[tuple[Fakes, Path]]:
    """Every platform's fake running, and a config dir with one store aimed at all of them."""
    key = tmp_path / "service-account.json"
    account = make_service_account(key)
    async with AsyncExitStack() as stack:
        running = Fakes(
            spotify=await stack.enter_async_context(FakePlatform(responder=SpotifyRules())),
            meta=FakeMeta(),
            ads=FakeDataManager(),
            ga4=await stack.enter_async_context(FakePlatform(responder=Ga4Fake())),
            bigquery=FakeBigQuery(),
            tokens=await stack.enter_async_context(LocalTokenServer(service_accounts=[account])),
        )
        for platform in (running.meta.platform, running.ads.platform, running.bigquery.platform):
            await stack.enter_async_context(platform)
        store = STORE.format(
            connection_id=CONNECTION_ID, spotify=running.spotify.url,
            pixel=PIXEL, meta=running.meta.platform.url, version=VERSION,
            customer=CUSTOMER, key=key, ads=running.ads.platform.url,
            tokens=running.tokens.url, ga4=running.ga4.url,
            project=PROJECT, dataset=DATASET, table=TABLE, bigquery=running.bigquery.platform.url,
        )  # fmt: skip
        yield running, write_config_dir(tmp_path / "config", store)


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def bodies(platform: FakePlatform, path: str) -> list[dict[str, Any]]:
    """The JSON body of every request to ``path`` the platform answered 2xx."""
    return [seen.json() for seen in platform.requests if seen.path == path and seen.status < 300]


async def test_one_purchase_reaches_all_five_platforms_each_as_its_rules_want(
    fakes: tuple[Fakes, Path],
) -> None:
    """Spotify and Meta get the event id, the customer's IP and the email hashed as is
    (trimmed, lower case); Google Ads and GA4 get the order id as their dedup key and the
    email hashed by Google's rule (dots dropped before @gmail.com); BigQuery gets the event id,
    the IP and Google's hash; every one gets the order's value, exactly once."""
    platforms, config_dir = fakes
    tagless = await RunningTagless(config_dir, env=SECRETS).start()
    try:
        assert await tagless.post("/v1/track", purchase(), key="shop-key") == (
            200,
            {"success": True},
        )
        await until(lambda: len(platforms.spotify.requests) >= 1, "Spotify got a request")
        await until(lambda: len(platforms.meta.received) >= 1, "Meta received the event")
        await until(lambda: len(platforms.ads.received) >= 1, "Google Ads received the event")
        await until(lambda: len(platforms.ga4.requests) >= 1, "GA4 got a request")
        await until(lambda: len(platforms.bigquery.rows) >= 1, "BigQuery inserted the row")
        await asyncio.sleep(0.2)  # anything sent twice would have arrived by now
    finally:
        await tagless.stop()

    meta_hash, google_hash = sha256("john.smith@gmail.com"), sha256("johnsmith@gmail.com")
    all_requests = [platforms.spotify.requests, platforms.meta.platform.requests,
                    platforms.ads.requests, platforms.ga4.requests,
                    platforms.bigquery.platform.requests]  # fmt: skip
    assert [len(requests) for requests in all_requests] == [1, 1, 1, 1, 1]

    [spotify] = bodies(platforms.spotify, "/capi-direct/events/")
    [event] = spotify["conversion_events"]["events"]
    assert (event["event_id"], event["event_name"]) == ("evt-five-0001", "PURCHASE")
    assert event["user_data"]["hashed_emails"] == [meta_hash]
    assert event["user_data"]["ip_address"] == CUSTOMER_IP
    assert event["event_details"] == {"amount": 295.4, "currency": "EUR"}

    [meta] = platforms.meta.received
    assert (meta["event_id"], meta["event_name"]) == ("evt-five-0001", "Purchase")
    assert meta["user_data"]["em"] == [meta_hash]
    assert meta["user_data"]["client_ip_address"] == CUSTOMER_IP
    assert (meta["custom_data"]["value"], meta["custom_data"]["order_id"]) == (295.4, "WC-10293")

    [ads] = platforms.ads.received  # Data Manager takes no IP; the order id is its dedup key
    assert (ads["transactionId"], ads["_action"]) == ("WC-10293", "987654321")
    assert ads["adIdentifiers"] == {"gclid": "Cj0KCQiA-five"}
    assert {"emailAddress": google_hash} in ads["userData"]["userIdentifiers"]
    assert (ads["conversionValue"], ads["currency"]) == (295.4, "EUR")

    [collected] = platforms.ga4.requests  # GA4's Measurement Protocol takes no IP
    assert (collected.path, Ga4Fake().check(collected.body)) == ("/mp/collect", [])
    ga4 = collected.json()
    [ga4_event] = ga4["events"]
    assert ga4_event["name"] == "purchase"
    assert ga4_event["params"]["transaction_id"] == "WC-10293"
    assert (ga4_event["params"]["value"], ga4_event["params"]["currency"]) == (295.4, "EUR")
    assert ga4["user_data"]["sha256_email_address"] == [google_hash]

    [insert] = bodies(platforms.bigquery.platform, INSERT_PATH)
    [row] = insert["rows"]
    assert row["insertId"] == "evt-five-0001"
    assert platforms.bigquery.rows == [row["json"]]
    assert row["json"]["email_sha256"] == [google_hash]
    assert row["json"]["client_ip"] == CUSTOMER_IP
    assert (row["json"]["value"], row["json"]["currency"]) == ("295.40", "EUR")
