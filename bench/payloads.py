"""Realistic Segment track events (~600 bytes each) as wrk body templates with messageId slots."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from router.identity.ranges import shared_classes

#: Stands in for the messageId inside a template; ``post.lua`` replaces every occurrence with a
#: fresh id on every request (Tagless de-duplicates on messageId).
ID_SLOT: Final = "@@MID@@"

_FIRST: Final = ("Anna", "Jonas", "Mia", "Lukas", "Sofia", "Elias", "Lea", "Noah")
_LAST: Final = ("Schmidt", "Müller", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann")
_PRODUCTS: Final = (
    ("SKU-10042", "Wool Sweater", "29.90"),
    ("SKU-20417", "Trail Shoes", "89.00"),
    ("SKU-31108", "Water Bottle", "24.50"),
    ("SKU-40270", "Beanie", "14.99"),
)
_AGENT: Final = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"


def customer_ip(rng: random.Random) -> str:
    """A random 84.x.y.z that Tagless classes ``public`` (a customer's, not a CDN's or cloud's).

    A cloud address would leave its event without a customer IP, and with stitching on every
    request of a repeated template would then look the same person up: a cost real traffic
    pays only for events that lack an IP, not for every request.
    """
    classes = shared_classes()
    while True:
        text = f"84.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        if classes.label(ipaddress.ip_address(text)) == "public":
            return text


def track_event(rng: random.Random, *, message_id: str = ID_SLOT) -> dict[str, Any]:
    """One Segment ``track`` "Order Completed" event with a user, context and 2 products."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    products = rng.sample(_PRODUCTS, 2)
    quantities = [rng.randint(1, 3) for _ in products]
    revenue = sum(float(p[2]) * q for p, q in zip(products, quantities, strict=True))
    order = rng.randint(100_000, 999_999)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": f"user-{rng.randint(10_000, 99_999)}",
        # a new visitor per event, as a purchase mostly is: every id new to stitching's index
        "anonymousId": f"{rng.getrandbits(32):08x}-{message_id}",
        "timestamp": now,
        "context": {
            "ip": customer_ip(rng),
            "userAgent": _AGENT,
            "page": {"url": "https://shop.example.com/checkout/thanks"},
            "traits": {
                "email": f"{first.lower()}.{last.lower()}@example.com",
                "phone": f"+49 151 {rng.randint(1_000_000, 9_999_999)}",
                "firstName": first,
                "lastName": last,
            },
        },
        "properties": {
            # one order per event: GA4 and Google Ads dedup on the order id
            "order_id": f"ORD-{order}-{message_id}",
            "revenue": round(revenue, 2),
            "currency": "EUR",
            "products": [
                {
                    "product_id": sku,
                    "name": name,
                    "price": float(price),
                    "quantity": qty,
                }
                for (sku, name, price), qty in zip(products, quantities, strict=True)
            ],
        },
    }


def single_template(seed: int = 1) -> bytes:
    """The body of one ``POST /v1/track``: one event with one id slot."""
    return orjson.dumps(track_event(random.Random(seed)))


def batch_template(size: int = 100, seed: int = 2) -> bytes:
    """The body of one ``POST /v1/batch``: ``{"batch": [...]}`` with ``size`` id slots."""
    rng = random.Random(seed)
    return orjson.dumps({"batch": [track_event(rng) for _ in range(size)]})


def write_templates(directory: Path, batch_size: int = 100) -> tuple[Path, Path]:
    """Write both templates into ``directory``; return (single, batch) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    single = directory / "single.json"
    batch = directory / "batch.json"
    single.write_bytes(single_template())
    batch.write_bytes(batch_template(batch_size))
    return single, batch


if __name__ == "__main__":
    body = single_template()
    print(body.decode())
    print(f"single: {len(body)} bytes; batch of 100: {len(batch_template())} bytes")
