"""The admin UI in a real Chromium: overview, event debugger, identity findings, replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from admin_browser import CHROMIUM, CHROMIUM_ARGS, Shop, eventually, screenshot, sign_in


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    running = await Shop(tmp_path).start()
    yield running
    await running.stop()


@pytest.fixture
async def page(shop: Shop) -> AsyncIterator[Any]:
    """A signed-in Chromium page on the admin listener."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium missing: run `bash scripts/browser-deps.sh` (make test does)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        tab = await context.new_page()
        tab.set_default_timeout(30_000)
        await sign_in(tab, shop.admin)
        yield tab
        await browser.close()


async def dead_letters(shop: Shop, count: int) -> None:
    """Send purchases 1..count and wait until the refusing webhook made each a dead letter."""
    for n in range(1, count + 1):
        await shop.track(purchase(n, ip="81.2.69.160"))
    assert shop.running is not None
    outbox = shop.running.app.outbox

    async def dead() -> bool:
        return len(await outbox.dead_letters("shop")) == count

    await eventually(dead, f"{count} dead letters")


def purchase(n: int, **context: Any) -> dict[str, Any]:
    return {
        "messageId": f"evt-{n}",
        "userId": f"user-{n}",
        "event": "Order Completed",
        "properties": {"order_id": f"order-{n}", "total": 42.5, "currency": "EUR"},
        "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)", **context},
    }


async def test_the_overview_shows_deliveries_per_destination(shop: Shop, page: Any) -> None:
    """After purchases reach Spotify, the overview's Spotify row counts them delivered."""
    for n in range(3):
        await shop.track(purchase(n, ip="81.2.69.160"))
    await eventually(lambda: len(shop.received("/capi-direct/events/")) == 3, "3 at Spotify")
    await page.goto(shop.admin + "/?window=1h")
    row = page.locator("tr[data-destination=spotify]")
    await row.wait_for()
    cells = await row.locator("td").all_inner_texts()
    assert cells[0] == "spotify"
    assert cells[1] == "spotify_capi"
    assert cells[2:4] == ["3", "3"]  # received, delivered
    await screenshot(page, "overview")


async def test_the_debugger_finds_a_purchase_by_order_id(shop: Shop, page: Any) -> None:
    """A purchase found by its order id shows the Spotify payload as sent and a 200 attempt."""
    await shop.track(purchase(7, ip="81.2.69.160"))
    await eventually(lambda: len(shop.received("/capi-direct/events/")) == 1, "the purchase")
    await page.goto(shop.admin + "/events")
    await page.fill("input[name=q]", "order-7")
    await page.click("form.search button[type=submit]")
    spotify = page.locator("section.event div.destination[data-destination=spotify]")
    await spotify.wait_for()
    payload = await spotify.locator("pre.payload").inner_text()
    assert '"PURCHASE"' in payload
    assert '"evt-7"' in payload
    assert "81.2.69.160" not in payload  # the IP is personal data: masked
    statuses = await spotify.locator("table.attempts td.status").all_inner_texts()
    assert "200" in statuses
    await screenshot(page, "events")


async def test_identity_names_purchases_sent_with_a_cloudflare_ip(shop: Shop, page: Any) -> None:
    """Purchases whose context.ip is a Cloudflare address yield a finding that says so, to
    Spotify, with what to change."""
    for n in range(3):
        await shop.track(purchase(n, ip="104.16.0.1", traits={"email": f"buyer{n}@example.com"}))
    await eventually(lambda: len(shop.received("/capi-direct/events/")) == 3, "3 at Spotify")
    await page.goto(shop.admin + "/identity?store=shop&window=1h")
    findings = page.locator(".finding")
    await findings.first.wait_for()
    texts = await findings.all_inner_texts()
    cloudflare = [t for t in texts if "Cloudflare" in t and "spotify" in t]
    assert cloudflare, texts
    assert "trusted_proxies" in cloudflare[0] or "context.ip" in cloudflare[0]
    await screenshot(page, "identity")


async def test_a_dead_letter_is_replayed_from_the_page_and_delivered(shop: Shop, page: Any) -> None:
    """A purchase the webhook refused is listed; its Replay button shows a dry run (one would
    be sent), confirming replays it, and the webhook, now accepting, receives it."""
    await dead_letters(shop, 1)
    shop.refuse = False
    await page.goto(shop.admin + "/dead-letters")
    row = page.locator("tr[data-event-id=evt-1]")
    await row.wait_for()
    assert "hook" in await row.inner_text()
    await screenshot(page, "dead-letters")
    await row.get_by_role("button", name="Replay").click()
    dry_run = page.locator("p.dry-run")
    await dry_run.wait_for()
    assert "1 dead letter would be sent again" in await dry_run.inner_text()
    assert shop.received("/hook") == []
    await screenshot(page, "replay-dry-run")
    await page.get_by_role("button", name="Replay 1 dead letter").click()
    await page.locator("p.notice").wait_for()
    assert "Replayed 1 dead letter" in await page.locator("p.notice").inner_text()
    await eventually(
        lambda: [e["event_id"] for e in shop.received("/hook")] == ["evt-1"], "the replay"
    )

    async def gone() -> bool:
        await page.reload()
        return await page.locator("tr[data-event-id=evt-1]").count() == 0

    await eventually(gone, "the dead letter to leave the page")
    await screenshot(page, "dead-letters-after-replay")


async def test_select_all_ticks_every_dead_letter_for_one_replay(shop: Shop, page: Any) -> None:
    """The header checkbox (the page's script) ticks every row; "Replay selected" then
    dry-runs all of them, and confirming sends both."""
    await dead_letters(shop, 2)
    shop.refuse = False
    await page.goto(shop.admin + "/dead-letters?store=shop")
    await page.locator("tr[data-event-id=evt-2]").wait_for()
    await page.check("input[data-select-all]")
    assert await page.locator("input[name=pick]:checked").count() == 2
    await page.get_by_role("button", name="Replay selected").click()
    await page.locator("p.dry-run").wait_for()
    assert "2 dead letters would be sent again" in await page.locator("p.dry-run").inner_text()
    await page.get_by_role("button", name="Replay 2 dead letters").click()
    await page.locator("p.notice").wait_for()
    await eventually(
        lambda: sorted(e["event_id"] for e in shop.received("/hook")) == ["evt-1", "evt-2"],
        "both replayed events at the webhook",
    )
