"""The bench's five fake platforms speak each platform's protocol as Tagless's destinations read
it: a batch posted to a Tagless configured like the bench's reaches every fake once per event,
every answer read as delivered (no retry, so no duplicate), every event id counted."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.testing.google_token import make_service_account
from router.testing.server import RunningTagless, write_config_dir

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # the bench's scripts import each other by their bare names

import fastserve  # noqa: E402
import payloads  # noqa: E402
import platforms  # noqa: E402
from rig import PLATFORMS, SECRETS, five_destinations  # noqa: E402
from sink import Tally  # noqa: E402


async def serve(stack: AsyncExitStack, handler: fastserve.Handler) -> str:
    server = await fastserve.start(handler)
    stack.push_async_callback(server.wait_closed)
    stack.callback(server.close)
    port = server.sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def fakes(tmp_path: Path) -> AsyncIterator[tuple[dict[str, Tally], Path]]:
    """Every platform's bench fake on loopback, and a config dir aimed at them as the bench's."""
    key_file = tmp_path / "service-account.json"
    make_service_account(key_file)
    tallies = {name: Tally() for name in PLATFORMS}
    async with AsyncExitStack() as stack:
        urls = {
            name: await serve(stack, platforms.platform_handler(name, tally))
            for name, tally in tallies.items()
        }
        block = five_destinations(urls, key_file)
        store = f"store: bench\nwrite_keys: [bench-key]\ndestinations:\n{block}"
        yield tallies, write_config_dir(tmp_path / "config", store)


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(1000):  # 20 s: generous on a busy machine
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def bench_events(count: int) -> list[dict[str, Any]]:
    """The bench's purchase events, each with its own messageId (and so its own order id)."""
    rng = random.Random(7)
    return [payloads.track_event(rng, message_id=f"bench-{n}") for n in range(count)]


async def test_every_fake_receives_each_bench_event_once_as_delivered(
    fakes: tuple[dict[str, Tally], Path],
) -> None:
    """Spotify, Meta and BigQuery count the event ids, GA4 and Google Ads the order ids (their
    dedup keys); Tagless settles every one as delivered from the fakes' answers, and each fake
    gets all three events exactly once and refuses nothing."""
    tallies, config_dir = fakes
    events = bench_events(3)
    tagless = await RunningTagless(config_dir, env=SECRETS).start()
    try:
        status, _ = await tagless.post("/v1/batch", {"batch": events}, key="bench-key")
        assert status == 200
        deliveries = tagless.app.metrics.deliveries
        for name in PLATFORMS:  # Tagless's own view: each destination settled 3 as delivered
            await until(lambda n=name: deliveries[("bench", n, "delivered")] >= 3, name)
        await asyncio.sleep(0.2)  # anything sent twice would have arrived by now
    finally:
        await tagless.stop()
    assert {k: v for k, v in deliveries.items() if k[2] != "delivered"} == {}

    message_ids = {e["messageId"].encode() for e in events}
    order_ids = {e["properties"]["order_id"].encode() for e in events}
    expected = {"ga4": order_ids, "google_ads": order_ids}
    for name, tally in tallies.items():
        stats = tally.stats()
        assert tally.seen == expected.get(name, message_ids), name
        assert (stats["duplicates"], stats["rejected"], stats["without_id"]) == (0, 0, 0), name


async def test_a_fake_refuses_wrong_credentials(tmp_path: Path) -> None:
    """A request without the platform's credentials gets a 401 and counts as rejected, so a
    bench whose config lost a secret shows refused requests instead of deliveries."""
    tally = Tally()
    async with AsyncExitStack() as stack:
        url = await serve(stack, platforms.platform_handler("meta", tally))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        path = platforms.ROUTES["meta"][0]
        async with session.post(f"{url}{path}?access_token=wrong", data=b"{}") as answer:
            assert answer.status == 401
        async with session.post(f"{url}{path}?access_token={platforms.META_TOKEN}") as answer:
            assert answer.status == 200  # the right token is let in on the same connection
    assert (tally.rejected, tally.requests) == (1, 1)


async def test_a_fake_answers_pipelined_requests_in_order(tmp_path: Path) -> None:
    """Requests written back to back on one connection get their answers in that order (a
    client may pipeline, as GA4's sender does)."""
    tally = Tally()
    async with AsyncExitStack() as stack:
        url = await serve(stack, platforms.platform_handler("ga4", tally))
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        query = f"measurement_id={platforms.GA4_MEASUREMENT_ID}&api_secret="
        requests = b"".join(
            (
                f"POST /mp/collect?{query}{secret} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
            for secret, body in [
                (platforms.GA4_SECRET, b'{"transaction_id":"t1"}'),
                ("wrong", b"{}"),
                (platforms.GA4_SECRET, b'{"transaction_id":"t2"}'),
            ]
        )
        writer.write(requests)
        statuses = []
        for _ in range(3):
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.append(int(head.split()[1]))
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
    assert statuses == [204, 401, 204]
    assert tally.seen == {b"t1", b"t2"}


def test_a_fake_serves_on_uvloop_as_the_bench_runs_it() -> None:
    """The bench runs the fakes on uvloop, whose transports are no asyncio.Transport: a fake
    there must still answer (an isinstance check once made every connection fail)."""
    import uvloop

    async def one_answer() -> int:
        tally = Tally()
        async with AsyncExitStack() as stack:
            url = await serve(stack, platforms.platform_handler("meta", tally))
            session = await stack.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
            )
            path = platforms.ROUTES["meta"][0]
            async with session.post(f"{url}{path}?access_token={platforms.META_TOKEN}") as answer:
                return answer.status

    assert uvloop.run(one_answer()) == 200
