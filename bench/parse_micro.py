"""Micro-benchmark: µs per parse_message call on a realistic Order Completed message."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import attrs
import orjson

from router.event import Event, IpOrigin, Item
from router.ingest.names import NameMap
from router.ingest.segment import parse_message

FIXTURE = Path(__file__).parent.parent / "tests/fixtures/segment/order_completed.json"
NUMBER = 2_000
REPEAT = 60


def _resolve_ip(ip: str | None) -> tuple[str | None, IpOrigin, str]:
    return ip, "payload", "public"


def _best_us(stmt: Callable[[], object]) -> float:
    """The fastest of REPEAT runs, in µs per call."""
    runs = timeit.repeat(stmt, number=NUMBER, repeat=REPEAT)
    return min(runs) / NUMBER * 1e6


def main() -> None:
    body = FIXTURE.read_bytes()
    msg = orjson.loads(body)
    names = NameMap({"Demo Booked": "generate_lead"})
    received_at = datetime.now(UTC)

    def parse() -> Event:
        return parse_message(
            msg,
            store="shop",
            received_at=received_at,
            default_type="track",
            names=names,
            resolve_ip=_resolve_ip,
        )

    event = parse()
    fields = attrs.asdict(event, recurse=False)
    items = [attrs.asdict(i) for i in event.items]
    parse_us = _best_us(parse)
    event_us = _best_us(lambda: Event(**fields))
    items_us = _best_us(lambda: [Item(**i) for i in items])
    print(f"message: {len(orjson.dumps(msg))} bytes, {len(event.items)} products")
    print(f"parse_message:      {parse_us:6.2f} µs/event")
    print(f"  of which Event(): {event_us:6.2f} µs, {len(items)} × Item(): {items_us:6.2f} µs")


if __name__ == "__main__":
    main()
