"""Micro-benchmark: CPU µs per event of each ad destination's ``map`` (``--digest``: payload bytes).

Maps bench-shaped events (bench/payloads.py ``track_event``, parsed by the Segment parser) through
spotify_capi, meta_capi, google_ads (data_manager) and bigquery configured as in
bench/rig.py ``five_destinations``, and prints the median of REPEAT runs of CPU time
(``time.process_time``), per destination and for all four mapping each event in turn (as one
process delivering to all of them does). The hash memo is emptied before each run, so a run pays
for every distinct value once. ``--digest`` prints instead a SHA-256 of the JSON bytes
(``router.codec.dumps``) of a wider corpus of events per destination: the same digest before
and after a change shows the payloads stayed byte-identical.

Usage: ``.venv/bin/python bench/mapping_micro.py [--events 20000] [--repeat 5] [--digest]``
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import platforms as p
from payloads import track_event

from destinations.bigquery import BigQueryConfig, BigQueryDestination
from destinations.google_ads import GoogleAdsConfig, GoogleAdsDestination
from destinations.meta_capi import MetaCapiConfig, MetaCapiDestination
from destinations.spotify_capi import SpotifyCapiConfig, SpotifyCapiDestination
from router import codec, privacy
from router.destination import Destination, MappingError
from router.event import Consent, Event, IpOrigin, Item
from router.google_auth import GoogleCredentials
from router.http import HttpClient
from router.ingest.names import NameMap
from router.ingest.segment import parse_message
from router.secret import Secret
from router.testing.golden import fixture_names, load_fixture

START = datetime(2026, 11, 20, 14, 30, 5, 123456, tzinfo=UTC)


def destinations() -> dict[str, Destination[Any]]:
    """The four destinations as the bench configures them (no HTTP is made)."""
    http = HttpClient.__new__(HttpClient)
    google = GoogleCredentials(client_id="c", client_secret=Secret("s"), refresh_token=Secret("r"))
    return {
        "spotify_capi": SpotifyCapiDestination(
            SpotifyCapiConfig(connection_id="bench-connection", token=Secret(p.SPOTIFY_TOKEN)),
            http,
        ),
        "meta_capi": MetaCapiDestination(
            MetaCapiConfig(pixel_id=p.META_PIXEL, access_token=Secret(p.META_TOKEN)), http
        ),
        "google_ads": GoogleAdsDestination(
            GoogleAdsConfig(
                mode="data_manager",
                customer_id=p.ADS_CUSTOMER,
                conversion_actions={"purchase": p.ADS_ACTION},
                credentials=google,
            ),
            http,
        ),
        "bigquery": BigQueryDestination(
            BigQueryConfig(
                project=p.BQ_PROJECT, dataset=p.BQ_DATASET, table=p.BQ_TABLE, credentials=google
            ),
            http,
        ),
    }


def _resolve_ip(ip: str | None) -> tuple[str | None, IpOrigin, str]:
    return ip, "payload", "public"


def bench_events(count: int, seed: int = 7) -> list[Event]:
    """``count`` Order Completed events as the bench sends them, one millisecond apart."""
    rng = random.Random(seed)
    names = NameMap()
    events = []
    for i in range(count):
        msg = track_event(rng, message_id=f"m-{i:08d}")
        moment = START + timedelta(milliseconds=i)
        msg["timestamp"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        events.append(
            parse_message(
                msg,
                store="shop",
                received_at=moment + timedelta(seconds=1),
                default_type="track",
                names=names,
                resolve_ip=_resolve_ip,
            )
        )
    return events


def _variants(event: Event, i: int) -> Iterator[Event]:
    """Edge cases of one event: other time zones and fractions, identity shapes, money, consent."""
    paris = timezone(timedelta(hours=1, minutes=30))
    yield attrs.evolve(event, occurred_at=event.occurred_at.astimezone(paris))
    yield attrs.evolve(event, occurred_at=START.replace(microsecond=0) + timedelta(seconds=i))
    yield attrs.evolve(event, occurred_at=START.replace(microsecond=999_999, year=1999))
    odd = timezone(timedelta(hours=-5, microseconds=250))
    yield attrs.evolve(
        event, occurred_at=START.replace(year=999), received_at=START.replace(year=1)
    )
    yield attrs.evolve(
        event,
        occurred_at=START.replace(tzinfo=odd),
        received_at=START.replace(microsecond=250, tzinfo=odd),
    )
    yield attrs.evolve(
        event,
        emails=(
            " A.B+x@GMail.com ",
            "a.b@googlemail.com",
            "x y@example.com",
            "no-at",
            "Ünïcode@Exämple.de",
            "A" * 64,
            hashlib.sha256(b"e").hexdigest().upper(),
            "a.b+x@gmail.com",
        ),
        phones=("0049 (151) 123-4567", "", "  ", "+1 415.555.0100", "(0)30 1234", "B" * 64),
        first_name=" Zoë-Ann 3 ",
        last_name="O'Brien",
        city="Menlo Park",
        region=" C.A ",
        postal_code="94025-1234",
        country="us ",
        gender="Female",
        date_of_birth="1990-04-30",
        user_id="  ID-7 ",
        spotify_device_id=" dev ",
    )
    yield attrs.evolve(event, emails=(), phones=(), first_name=None, client_ip=None)
    yield attrs.evolve(
        event,
        value=Decimal("1e-12") if i % 2 else Decimal("-12345678901234567890123456789.000000000"),
        tax=Decimal("123.4567890125") if i % 3 else Decimal("7"),
        shipping=Decimal("-0.0"),
        discount=Decimal("1E+2") if i % 2 else Decimal("0.0000001"),
        currency=" usd",
        items=(Item(id="A", price=Decimal("2.50"), quantity=None, category="1234"),),
    )
    yield attrs.evolve(
        event,
        consent=Consent(ad_user_data="denied", ad_personalization="denied"),
        gclid="gclid-1",
        action_source="app",
    )
    yield attrs.evolve(event, action_source="offline", page_url=None, client_ip_class="private")


def digest_events(count: int) -> list[Event]:
    """The fixtures, bench events and their edge-case variants."""
    base = [load_fixture(name) for name in fixture_names()] + bench_events(count)
    return base + [v for i, event in enumerate(base[:200]) for v in _variants(event, i)]


def payload_bytes(destination: Destination[Any], event: Event) -> bytes:
    try:
        return codec.dumps(destination.map(event))
    except MappingError as error:
        return f"{error.reason}: {error}".encode()


def cpu_us_per_event(run: Callable[[], object], events: int, repeat: int) -> float:
    """Median over ``repeat`` runs of the CPU µs per event, the hash memo empty at each start."""
    samples = []
    for _ in range(repeat):
        _clear_memo()
        gc.collect()
        started = time.process_time()
        run()
        samples.append((time.process_time() - started) / events * 1e6)
    return statistics.median(samples)


def _map_all(mapper: Callable[[Event], object], events: list[Event]) -> None:
    """Map each event, keeping no payload (a server keeps a batch, not 20,000 of them)."""
    for event in events:
        mapper(event)


def _clear_memo() -> None:
    clear = getattr(privacy, "clear_hash_memo", None)
    if clear is not None:
        clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--digest", action="store_true")
    args = parser.parse_args()
    dests = destinations()
    if args.digest:
        corpus = digest_events(2_000)
        for name, dest in dests.items():
            sha = hashlib.sha256()
            for event in corpus:
                sha.update(payload_bytes(dest, event) + b"\n")
            print(f"{name:13s} {len(corpus)} events  sha256 {sha.hexdigest()}")
        return
    events = bench_events(args.events)
    total = 0.0
    for name, dest in dests.items():
        mapper = dest.map
        us = cpu_us_per_event(lambda m=mapper: _map_all(m, events), len(events), args.repeat)
        total += us
        print(f"{name:13s} {us:7.2f} CPU µs/event")
    print(f"{'sum':13s} {total:7.2f} CPU µs/event")
    mappers = [dest.map for dest in dests.values()]

    def all_four() -> None:
        for event in events:
            for m in mappers:
                m(event)

    us = cpu_us_per_event(all_four, len(events), args.repeat)
    print(f"{'all four':13s} {us:7.2f} CPU µs/event (each event through the four in turn)")


if __name__ == "__main__":
    main()
