"""Delivery CPU per 1,000 events for one store with the five platforms, in-process, HTTP stubbed.

Fills a temporary SQLite outbox with realistic canonical events (the fixture events of
``router/testing/fixtures/events``, fresh ids and times), routed as Tagless routes them to the
five platforms of ``bench/rig.py`` (Spotify CAPI, Meta CAPI, GA4, Google Ads, BigQuery),
then runs the real :class:`~router.dispatch.LaneDispatcher` of each until every event is
settled. Each platform's HTTP answer is an instant success (a stub ``HttpClient``), so what is
measured is Tagless's own delivery work: claims, decoding, mapping, encoding, settling.

Prints the process CPU time (``time.process_time``, so other load on the machine does not
count) per 1,000 events delivered to all five, for each repetition and their median::

    .venv/bin/python bench/delivery_micro.py --events 20000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
import platforms as p
import structlog
from rig import five_destinations

import router.testing
from destinations.ga4 import Ga4Destination
from router import codec
from router.clock import SystemClock
from router.config import load_config
from router.decoded import DecodedEvents
from router.dispatch import LaneDispatcher
from router.http import HttpClient, Response
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.sqlite import SqliteOutbox
from router.plugins import discover
from router.testing.google_token import make_service_account
from router.testing.server import write_config_dir

STORE = "shop"
FIXTURES_DIR = Path(router.testing.__file__).parent / "fixtures" / "events"
#: Each platform's base URL: the stub answers by URL, nothing is listening there.
URLS: Final = {
    name: f"http://stub/{name}" for name in ("spotify", "meta", "ga4", "google_ads", "bigquery")
}
SECRETS: Final = {
    "BENCH_SPOTIFY_TOKEN": p.SPOTIFY_TOKEN,
    "BENCH_META_TOKEN": p.META_TOKEN,
    "BENCH_GA4_SECRET": p.GA4_SECRET,
}


class InstantHttp(HttpClient):
    """Answers every request at once with a success the platforms' adapters accept."""

    def __init__(self) -> None:
        self.requests = 0

    async def request(
        self, method: str, url: str, body: bytes | None, *_: Any, **__: Any
    ) -> Response:
        self.requests += 1
        if url.endswith("/token"):
            answer = {"access_token": "bench-access-token", "expires_in": 3600}
            return Response(200, orjson.dumps(answer), None)
        if "/meta" in url:
            count = len(orjson.loads(body or b"{}").get("data", ()))
            return Response(200, orjson.dumps({"events_received": count}), None)
        return Response(200, b"{}", None)

    async def close(self) -> None:
        return None


class InstantPipeline:
    """GA4's pipelined ``/mp/collect`` client, answering every request at once with 204 (GA4
    sends through its own connections, not the ``HttpClient``: nothing listens at the stub)."""

    def __init__(self, http: InstantHttp) -> None:
        self.http = http

    async def post_all(
        self, target: str, bodies: Sequence[bytes], headers: Any, *, timeout_secs: float
    ) -> list[Response]:
        self.http.requests += len(bodies)
        return [Response(204, b"", None)] * len(bodies)

    async def close(self) -> None:
        return None


def fixture_events() -> list[dict[str, Any]]:
    """The stored form of every fixture event (purchase, page view, add to cart, ...)."""
    return [orjson.loads(path.read_bytes()) for path in sorted(FIXTURES_DIR.glob("*.json"))]


def fill_events(count: int, routes_of: dict[str, tuple[str, ...]]) -> list[NewEvent]:
    """``count`` events cycling through the fixtures, each with its own id and a fresh time."""
    shapes = fixture_events()
    now = datetime.now(UTC)
    out = []
    for index in range(count):
        event = dict(shapes[index % len(shapes)])
        event["event_id"] = f"bench-{index:07d}"
        event["occurred_at"] = (now - timedelta(seconds=30)).isoformat()
        event["received_at"] = now.isoformat()
        body = codec.encode(codec.from_dict(event))
        out.append(
            NewEvent(STORE, event["event_id"], now.timestamp(), routes_of[event["name"]], body)
        )
    return out


def routes(instances: dict[str, Any], names: set[str]) -> dict[str, tuple[str, ...]]:
    """Each event name's destinations, as routing decides them (the names they accept)."""
    table = {}
    for name in names:
        table[name] = tuple(
            dest_id
            for dest_id, dest in instances.items()
            if (accepted := dest.routed_events()) is None or name in accepted
        )
    return table


async def one_run(root: Path, events: int, *, tally: bool = False) -> tuple[float, int]:
    """Fill an outbox, deliver it to the five; CPU seconds and events delivered (sum)."""
    store_yaml = "store: shop\nwrite_keys: [shop-key]\ndestinations:\n"
    config_dir = write_config_dir(root, store_yaml + five_destinations(URLS, root / "key.json"))
    make_service_account(root / "key.json")
    types = {k: v.config_class for k, v in discover().items()}
    config = load_config(config_dir, types, SECRETS)
    plugins = discover()
    http = InstantHttp()
    store = config.stores[0]
    instances = {d.id: plugins[d.type](d.settings, http) for d in store.destinations}
    for instance in instances.values():
        if isinstance(instance, Ga4Destination):
            instance.collector = InstantPipeline(http)  # type: ignore[assignment]
    outbox = SqliteOutbox(root / "bench.db", synchronous="normal", max_pending_events=10**7)
    await outbox.open()
    names = {e["name"] for e in fixture_events()}
    table = routes(instances, names)
    filled = fill_events(events, table)
    for start in range(0, events, 1000):
        await outbox.append(filled[start : start + 1000])
    expected = sum(len(event.routes) for event in filled)
    clock = SystemClock()
    policy = RetryPolicy(max_attempts=3)
    decoded = DecodedEvents()  # shared by the store's lanes, as Tagless.start_lanes does
    lanes = [
        LaneDispatcher(outbox, STORE, dest_id, dest, policy, clock, decoded=decoded)
        for dest_id, dest in instances.items()
    ]
    started = time.process_time()
    tasks = [asyncio.create_task(lane.run()) for lane in lanes]
    while True:
        settled = sum(sum(lane.metrics.deliveries.values()) for lane in lanes)
        settled += sum(sum(lane.metrics.skipped_consent.values()) for lane in lanes)
        if settled >= expected:
            break
        await asyncio.sleep(0.01)
    took = time.process_time() - started
    for lane in lanes:
        lane.stop()
    for lane in lanes:
        await lane.drain(1.0)
    await asyncio.gather(*tasks)
    await outbox.close()
    if tally:
        for lane in lanes:
            print(dict(lane.metrics.deliveries), dict(lane.metrics.skipped_consent))
    delivered = sum(
        n
        for lane in lanes
        for (_, _, state), n in lane.metrics.deliveries.items()
        if state == "delivered"
    )
    return took, delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tally", action="store_true", help="print each lane's outcomes")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    figures = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="delivery-micro-") as tmp:
            took, delivered = asyncio.run(one_run(Path(tmp), args.events, tally=args.tally))
        per_k = took * 1000.0 / (args.events / 1000.0)
        figures.append(per_k)
        print(f"run {run + 1}: {per_k:7.1f} CPU ms per 1,000 events ({delivered} deliveries)")
    print(f"median: {statistics.median(figures):.1f} CPU ms per 1,000 events to all five")


if __name__ == "__main__":
    main()
