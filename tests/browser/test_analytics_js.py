"""Segment's analytics.js in a real Chromium, pointed at Tagless: page and product views arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir

HERE = Path(__file__).parent
BUNDLE = HERE / "node_modules/@segment/analytics-next/dist/umd/index.js"
CHROMIUM = Path("/usr/bin/chromium")
#: As this machine's network is closed, Chromium must not try its own background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: The store's page: loads analytics.js from a local file, points it at Tagless with
#: ``cdnURL`` (settings) and ``apiHost`` (events), then sends a page and a product view.
PAGE = """<!doctype html>
<html><head><title>Shop</title><script src="/analytics.js"></script>
<script>
  const analytics = AnalyticsNext.AnalyticsBrowser.load(
    {writeKey: "browser-key", cdnURL: "%(tagless)s"},
    {integrations: {"Segment.io": {apiHost: "%(host)s/v1", protocol: "http"}}});
  analytics.page()
    .then(() => analytics.track("Product Viewed",
      {product_id: "sku-42", name: "Mug", price: 12.5, currency: "EUR"}))
    .then(() => { window.sent = true; }, (error) => { window.failed = String(error); });
</script></head><body>A shop</body></html>
"""


@pytest.fixture
def browser_deps() -> None:
    """Fail (not skip) without Chromium or analytics.js: `make test` installs both."""
    if not BUNDLE.exists() or not CHROMIUM.exists():
        pytest.fail("browser test dependencies missing: run `bash scripts/browser-deps.sh`")


@pytest.fixture
async def page_server(browser_deps: None) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Serves the shop page and analytics.js on its own origin; the page text is set later."""
    content: dict[str, str] = {}

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=content["page"], content_type="text/html")

    async def bundle(_: web.Request) -> web.FileResponse:
        return web.FileResponse(BUNDLE)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/analytics.js", bundle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", content
    await runner.cleanup()


async def test_analytics_js_events_reach_a_webhook_with_the_browser_user_agent(
    tmp_path: Path, page_server: tuple[str, dict[str, str]]
) -> None:
    """A page loading analytics.js from a local file, with cdnURL and apiHost at Tagless, gets
    its settings from Tagless and its page and product views reach a webhook destination,
    carrying the browser's own user agent."""
    from playwright.async_api import async_playwright

    origin, content = page_server
    async with FakePlatform() as hook:
        store = (
            "store: shop\nwrite_keys: [browser-key]\n"
            f'allowed_origins: ["{origin}"]\n'
            f"destinations:\n  - {{id: hook, type: webhook, url: '{hook.url}/hook'}}\n"
        )
        tagless = await RunningTagless(write_config_dir(tmp_path, store)).start()
        try:
            host = tagless.base.removeprefix("http://")
            content["page"] = PAGE % {"tagless": tagless.base, "host": host}
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                page = await browser.new_page()
                await page.goto(origin + "/")
                await page.wait_for_function("window.sent || window.failed", timeout=20_000)
                assert await page.evaluate("window.failed") is None
                user_agent = await page.evaluate("navigator.userAgent")
                await browser.close()
            events = await _delivered(hook, 2)
        finally:
            await tagless.stop()
    by_name = {event["name"]: event for event in events}
    assert set(by_name) == {"page_view", "view_item"}
    assert {event["user_agent"] for event in events} == {user_agent}
    assert "HeadlessChrome" in user_agent
    assert by_name["page_view"]["page_url"] == origin + "/"
    product = by_name["view_item"]
    assert product["items"] == [{"id": "sku-42", "name": "Mug", "price": "12.5"}]
    assert product["currency"] == "EUR"
    assert by_name["page_view"]["anonymous_id"] == product["anonymous_id"]


async def _delivered(hook: FakePlatform, count: int) -> list[dict[str, object]]:
    """The canonical events the webhook received, once ``count`` have arrived."""
    for _ in range(200):
        events = [event for request in hook.requests for event in request.json()["events"]]
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"the webhook received {len(hook.requests)} requests, not {count} events")


async def test_settings_name_tagless_and_only_the_keys_store_origins(
    tmp_path: Path, page_server: tuple[str, dict[str, str]]
) -> None:
    """The settings document points analytics.js at this Tagless, lists the store's destinations
    as server-side, echoes only that store's allowed origin, and an unknown key gets a 404."""
    origin, _ = page_server
    stores = (
        "store: shop\nwrite_keys: [browser-key]\n"
        f'allowed_origins: ["{origin}"]\n'
        "destinations:\n  - {id: archive, type: file, path: %s}\n" % (tmp_path / "out.jsonl"),
        'store: other\nwrite_keys: [other-key]\nallowed_origins: ["https://other.example"]\n',
    )
    tagless = await RunningTagless(write_config_dir(tmp_path, *stores)).start()
    try:
        assert tagless.session is not None
        url = tagless.base + "/v1/projects/browser-key/settings"
        async with tagless.session.get(url, headers={"Origin": origin}) as answer:
            assert answer.status == 200
            assert answer.headers["Access-Control-Allow-Origin"] == origin
            settings = await answer.json()
        foreign = {"Origin": "https://other.example"}
        async with tagless.session.get(url, headers=foreign) as answer:
            assert answer.status == 200
            assert "Access-Control-Allow-Origin" not in answer.headers
        unknown = tagless.base + "/v1/projects/nobody/settings"
        async with tagless.session.get(unknown) as answer:
            assert answer.status == 404
            assert (await answer.json())["error"]["code"] == "unknown_write_key"
    finally:
        await tagless.stop()
    segment = settings["integrations"]["Segment.io"]
    assert list(settings["integrations"]) == ["Segment.io"]
    assert segment["apiKey"] == "browser-key"
    assert segment["apiHost"] == tagless.base.removeprefix("http://") + "/v1"
    assert segment["unbundledIntegrations"] == ["archive"]
    assert settings["metrics"]["sampleRate"] == 0
