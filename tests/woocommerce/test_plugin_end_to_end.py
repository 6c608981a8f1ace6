"""The WooCommerce plugin's PHP, driven through its hooks request by request, posts to a real
`tagless serve` (a child process), and its events reach a webhook and Spotify with the
customer's own IP."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness import WRITE_KEY, TaglessConfig, TaglessServer
from wordpress_shop import Shop

from router.testing.fake_platform import FakePlatform

CUSTOMER_IP = "81.2.69.142"
LOAD_BALANCER = "10.0.0.5"
GATEWAY_IP = "34.120.1.1"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
EMAIL = "Jane.Doe@Example.com"
BILLING = {
    "email": EMAIL,
    "phone": "+44 20 7946 0000",
    "first_name": "Jane",
    "last_name": "Doe",
    "address_1": "1 High Street",
    "city": "London",
    "postcode": "SW1A 1AA",
    "country": "GB",
}
#: The customer's requests reach WordPress through the store's load balancer.
CUSTOMER = {
    "REMOTE_ADDR": LOAD_BALANCER,
    "HTTP_X_FORWARDED_FOR": f"203.0.113.66, {CUSTOMER_IP}",
    "HTTP_USER_AGENT": FIREFOX,
}


@pytest.fixture
async def platforms() -> AsyncIterator[tuple[FakePlatform, FakePlatform]]:
    async with FakePlatform() as hook, FakePlatform() as spotify:
        yield hook, spotify


def _server(tmp_path: Path, platforms: tuple[FakePlatform, FakePlatform]) -> TaglessServer:
    """A `tagless serve` (not started) whose store ``shop`` (write key ``shop-key``) has a
    webhook and a Spotify destination, both local fakes."""
    hook, spotify = platforms
    config = TaglessConfig(tmp_path / "tagless", hook.url)
    (config.directory / "stores" / "shop.yaml").write_text(
        f"store: shop\nwrite_keys: [{WRITE_KEY}]\n"
        "destinations:\n"
        f"  - {{id: hook, type: webhook, url: '{hook.url}/hook'}}\n"
        f"  - {{id: spotify, type: spotify_capi, endpoint: '{spotify.url}',"
        " connection_id: conn-1, token: spotify-token}\n"
    )
    return TaglessServer(config)


@pytest.fixture
async def tagless(
    tmp_path: Path, platforms: tuple[FakePlatform, FakePlatform]
) -> AsyncIterator[str]:
    """A running `tagless serve`; its ingest URL. Killed when the test ends."""
    server = _server(tmp_path, platforms)
    try:
        await server.start()
        yield server.config.ingest_url
    finally:
        server.cleanup()


async def _received(platform: FakePlatform, key: str, count: int) -> list[dict[str, Any]]:
    """What ``platform`` received under ``key`` once ``count`` events have arrived."""
    for _ in range(1200):  # generous: two busy cores
        events = [e for r in platform.requests if r.status == 200 for e in _events(r.json(), key)]
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(platform.requests)} requests arrived, not {count} events")


def _events(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return list(body["conversion_events"]["events"] if key == "spotify" else body["events"])


async def _visit_and_buy(shop: Shop, url: str, **cookies: str) -> dict[str, Any]:
    """A customer lands from an ad, views the mug, adds it to the cart and checks out; the
    payment gateway's server then reports the payment. Returns the checkout step's result."""
    setup = await shop.request(
        "setup", url=url, write_key="shop-key", trusted_proxies=["10.0.0.0/8"]
    )
    shop.jar = {
        "_fbp": "fb.1.1764500000000.987654321",
        "__spdt": "spdt-device-1",
        "_ga": "GA1.1.42.1764500000",
        **cookies,
    }
    landing = {**CUSTOMER, "REQUEST_URI": "/?fbclid=IwAR-ad-click&gclid=Cj0KCQ-ad-click"}
    await shop.request("page", server=landing)
    product_page = {**CUSTOMER, "REQUEST_URI": f"/?product={setup['product_slug']}"}
    await shop.request("page", server=product_page)
    await shop.request("add_to_cart", server=CUSTOMER, product_id=setup["product_id"])
    checkout = await shop.request(
        "checkout", server=CUSTOMER, product_id=setup["product_id"], billing=BILLING
    )
    gateway = {"REMOTE_ADDR": GATEWAY_IP, "HTTP_USER_AGENT": "PaymentGateway-Webhook/2.1"}
    await shop.request("gateway", server=gateway, keep_cookies=False, order_id=checkout["order_id"])
    return checkout


async def test_purchase_reaches_the_webhook_with_the_checkout_time_ip_identity_and_click_ids(
    shop: Shop, tagless: str, platforms: tuple[FakePlatform, FakePlatform]
) -> None:
    """Landing, product view, add to cart, checkout behind a trusted load balancer, then the
    gateway's callback from its own server: after the background flush, the webhook gets the
    purchase with the customer's IP and browser (not the gateway's), the billing identity and
    the ad click ids of the landing URL and cookies, under the order's deterministic id; Spotify
    gets the same IP and the SHA-256 of the email."""
    hook, spotify = platforms
    checkout = await _visit_and_buy(shop, tagless)
    flushed = await shop.request("flush", keep_cookies=False)
    assert flushed["queued"] == {"pending": 0, "sent": 5, "failed": 0}, flushed

    events = await _received(hook, "events", 5)
    by_name = {e["name"]: e for e in events}
    assert set(by_name) == {"page_view", "view_item", "add_to_cart", "begin_checkout", "purchase"}
    purchase = by_name["purchase"]
    assert purchase["event_id"] == checkout["purchase_event_id"]
    assert purchase["order_id"] == str(checkout["order_id"])
    assert (purchase["client_ip"], purchase["client_ip_class"]) == (CUSTOMER_IP, "public")
    assert purchase["client_ip_origin"] == "payload"
    assert purchase["user_agent"] == FIREFOX
    assert purchase["emails"] == [EMAIL]
    assert purchase["phones"] == ["+44 20 7946 0000"]
    assert (purchase["first_name"], purchase["last_name"]) == ("Jane", "Doe")
    assert (purchase["city"], purchase["postal_code"], purchase["country"]) == (
        "London",
        "SW1A 1AA",
        "GB",
    )
    assert purchase["fbc"].startswith("fb.1.") and purchase["fbc"].endswith(".IwAR-ad-click")
    assert purchase["fbp"] == "fb.1.1764500000000.987654321"
    assert purchase["gclid"] == "Cj0KCQ-ad-click"
    assert purchase["ga_client_id"] == "42.1764500000"
    assert purchase["spotify_device_id"] == "spdt-device-1"
    assert (purchase["value"], purchase["currency"]) == ("29.9", "EUR")
    assert {e["anonymous_id"] for e in events} == {purchase["anonymous_id"]}
    assert {e["client_ip"] for e in events} == {CUSTOMER_IP}

    conversions = await _received(spotify, "spotify", 5)
    spotify_purchase = next(e for e in conversions if e["event_name"] == "PURCHASE")
    assert spotify_purchase["event_id"] == checkout["purchase_event_id"]
    assert spotify_purchase["user_data"]["ip_address"] == CUSTOMER_IP
    sha = hashlib.sha256(EMAIL.strip().lower().encode()).hexdigest()
    assert spotify_purchase["user_data"]["hashed_emails"] == [sha]
    assert spotify_purchase["user_data"]["device_id"] == "spdt-device-1"


async def test_consent_stated_at_checkout_reaches_tagless_with_the_purchase(
    shop: Shop, tagless: str, platforms: tuple[FakePlatform, FakePlatform]
) -> None:
    """A customer whose consent banner (Complianz) denied marketing and granted statistics:
    the purchase, sent from the gateway's request without any cookie, carries that consent,
    and Tagless reads it as ad_user_data and ad_personalization denied, analytics granted."""
    hook, _ = platforms
    await _visit_and_buy(shop, tagless, cmplz_marketing="deny", cmplz_statistics="allow")
    await shop.request("flush", keep_cookies=False)
    events = await _received(hook, "events", 5)
    purchase = next(e for e in events if e["name"] == "purchase")
    consent = purchase["consent"]
    assert (consent["ad_user_data"], consent["ad_personalization"]) == ("denied", "denied")
    assert consent["analytics"] == "granted"
    assert consent["categories"] == {"advertising": "denied", "analytics": "granted"}
    assert purchase["gclid"] is None and purchase["fbc"] is None  # not kept without consent


async def test_events_wait_in_the_queue_while_tagless_is_down_and_arrive_once_it_is_up(
    shop: Shop, tmp_path: Path, platforms: tuple[FakePlatform, FakePlatform]
) -> None:
    """The shop never waits on Tagless: with Tagless down, the journey's events are queued and
    the background flush keeps them with the error; once Tagless is up at the same URL, the
    retry delivers each of them exactly once, the purchase with the customer's IP."""
    hook, _ = platforms
    server = _server(tmp_path, platforms)
    try:
        await _visit_and_buy(shop, server.config.ingest_url)
        down = await shop.request("flush", keep_cookies=False)
        assert down["queued"] == {"pending": 5, "sent": 0, "failed": 0}
        assert "Tagless unreachable" in down["health"]

        await server.start()
        await shop.request("retry_now", keep_cookies=False)
        up = await shop.request("flush", keep_cookies=False)
        assert up["queued"] == {"pending": 0, "sent": 5, "failed": 0}
        events = await _received(hook, "events", 5)
    finally:
        server.cleanup()
    assert sorted(e["name"] for e in events) == sorted(
        ["page_view", "view_item", "add_to_cart", "begin_checkout", "purchase"]
    )
    assert next(e for e in events if e["name"] == "purchase")["client_ip"] == CUSTOMER_IP
