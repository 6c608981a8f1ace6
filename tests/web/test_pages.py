"""The overview, event debugger and identity pages render the ops reports' dicts as HTML."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from router.web.pages import WINDOWS, Pages, Sources

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


class Recorder:
    """Fixture reports in the shapes of ``router.ops``, remembering what each was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    async def overview(self, _: Any, window: str) -> dict[str, Any]:
        self.asked.append(("overview", window))
        if window not in WINDOWS:
            raise ValueError(f"window {window!r} is not one of 1h, 24h, 7d")
        return fixture("overview")

    async def find_events(self, _: Any, q: str, *, store: str | None = None) -> dict[str, Any]:
        self.asked.append(("events", q, store))
        return fixture("events")

    async def identity_report(self, _: Any, store: str, window: str) -> dict[str, Any]:
        self.asked.append(("identity", store, window))
        return fixture("identity")


@pytest.fixture
async def pages() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Recorder]]:
    recorder = Recorder()
    sources = Sources(recorder.overview, recorder.find_events, recorder.identity_report)
    tagless: Any = SimpleNamespace(
        config=SimpleNamespace(stores=[SimpleNamespace(store="shop"), SimpleNamespace(store="b")])
    )
    app = web.Application()
    Pages(tagless, sources).add_routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, recorder


async def text_of(client: TestClient[web.Request, web.Application], path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status, await response.text()


async def test_overview_shows_each_destinations_counts_pause_and_a_refused_reload(
    pages: tuple[TestClient[web.Request, web.Application], Recorder],
) -> None:
    """Per destination: counts, latency, depth, oldest pending; a pause with its reason; a
    refused config reload with its errors; disk used and retention."""
    client, recorder = pages
    status, page = await text_of(client, "/?window=7d")
    assert status == 200
    assert recorder.asked == [("overview", "7d")]
    assert '<option value="7d" selected>' in page
    row = page.split('data-destination="spotify"')[1].split("</tr>")[0]
    for cell in ("1200", "1150", ">30<", ">20<", ">7<", ">3<", "84 ms", "413 ms", "95 s"):
        assert cell in row, cell
    assert "/dead-letters?store=shop&amp;destination=spotify" in row
    meta = page.split('data-destination="meta"')[1].split("</tr>")[0]
    assert "paused: auth_refused, until 2026-11-30 10:00:00 UTC" in meta
    assert "2.0 h" in meta
    assert "was refused; the running config is kept" in page
    assert "META_TOKEN is not set" in page
    assert "52.4 MB" in page
    assert "attempts_retention_hours" in page


async def test_an_unknown_window_is_refused_with_the_valid_ones(
    pages: tuple[TestClient[web.Request, web.Application], Recorder],
) -> None:
    client, _ = pages
    status, page = await text_of(client, "/?window=2w")
    assert status == 400
    assert "is not one of 1h, 24h, 7d" in html.unescape(page)


async def test_the_debugger_shows_payloads_decisions_and_attempts(
    pages: tuple[TestClient[web.Request, web.Application], Recorder],
) -> None:
    """A found event shows its masked canonical event, each destination's decision, the
    payload as sent and every attempt with its HTTP status and latency."""
    client, recorder = pages
    status, page = await text_of(client, "/events?q=order-42&store=shop")
    assert status == 200
    assert recorder.asked == [("events", "order-42", "shop")]
    assert "1 event found by order id" in page
    assert 'value="order-42"' in page  # an order id is shown back in the search box
    spotify = page.split('data-destination="spotify"')[1].split('data-destination="ga4"')[0]
    assert "&#34;PURCHASE&#34;" in spotify or '"PURCHASE"' in spotify
    assert "5f2b1c…" in spotify
    statuses = [cell.split("<")[0] for cell in spotify.split('class="num status">')[1:]]
    assert statuses == ["503", "200"]
    assert "89 ms" in spotify
    assert 'class="decision filtered">filtered</span>' in page
    assert "filter: only page_view" in page


async def test_the_debugger_never_shows_an_email_it_was_asked_for(
    pages: tuple[TestClient[web.Request, web.Application], Recorder],
) -> None:
    """Searching by email hands the email to the look-up (which hashes it) but the page does
    not show it back, not even in the search box."""
    client, recorder = pages
    status, page = await text_of(client, "/events?q=Jane.Doe%40example.com")
    assert status == 200
    assert recorder.asked == [("events", "Jane.Doe@example.com", None)]
    assert "jane.doe" not in page.lower()


async def test_identity_shows_findings_with_evidence_and_fix_and_shares(
    pages: tuple[TestClient[web.Request, web.Application], Recorder],
) -> None:
    """Findings in plain language, with evidence and what to change (HTML escaped); the
    table shows each IP class and field as a percentage."""
    client, recorder = pages
    status, page = await text_of(client, "/identity?store=shop&window=1h")
    assert status == 200
    assert recorder.asked == [("identity", "shop", "1h")]
    assert "33% of purchase events to spotify carry a CDN IP (Cloudflare)" in page
    assert "&lt;script&gt;" in page
    assert "<script>" not in page.split("</head>")[1]
    assert "Evidence: 10 of 30 events" in page
    assert "Add cloudflare to client_ip.trusted_proxies" in page
    for cell in (">60%<", ">33%<", ">7%<", ">90%<", ">50%<", ">&lt;1%<", "cloudflare 33%"):
        assert cell in page, cell


async def test_identity_defaults_to_the_first_store_and_a_day(
    pages: tuple[TestClient[web.Request, web.Application], Recorder],
) -> None:
    client, recorder = pages
    status, _ = await text_of(client, "/identity")
    assert status == 200
    assert recorder.asked == [("identity", "shop", "24h")]
