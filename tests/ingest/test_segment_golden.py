"""Golden canonical events: each Segment call in tests/fixtures/segment/calls as Tagless stores it.

The fields Segment's spec names land on typed fields (``previous_id``, ``group_id``,
``page_category``, an item's ``sku``, ``url``, ``image_url``); the rest stays as sent, under
``traits`` or an item's ``properties``; a clock set ahead is clamped with its time kept.
``make golden`` rewrites the files under tests/golden/canonical; review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from router import codec
from router.ingest.names import DEFAULT_NAMES
from router.ingest.segment import parse_fields

CALLS = Path(__file__).parent.parent / "fixtures" / "segment" / "calls"
GOLDEN = Path(__file__).parent.parent / "golden" / "canonical"
RECEIVED = datetime(2024, 5, 18, 13, 30, tzinfo=UTC)


def stored(message: object) -> object:
    """The stored canonical form of one message received at ``RECEIVED`` from 81.2.69.142."""
    fields = parse_fields(
        message,
        store="shop",
        received_at=RECEIVED,
        default_type=None,
        names=DEFAULT_NAMES,
        resolve_ip=lambda ip: ("81.2.69.142", "peer", "public"),
    )
    return orjson.loads(codec.encode_fields(fields))


@pytest.mark.parametrize("name", sorted(p.stem for p in CALLS.glob("*.json")))
def test_segment_call_golden(name: str) -> None:
    """The call parses to the reviewed canonical event, and that event decodes back."""
    actual = stored(json.loads((CALLS / f"{name}.json").read_text()))
    path = GOLDEN / f"{name}.json"
    if os.environ.get("TAGLESS_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert path.exists(), f"no golden file {path}; run `make golden` and review it"
    assert actual == json.loads(path.read_text()), f"{name}: differs from its golden file"
    event = codec.decode(orjson.dumps(actual))
    assert codec.decode(codec.encode(event)) == event


def test_fields_segment_names_land_on_typed_fields() -> None:
    """previousId, groupId, a page's category, a product's sku/url/image_url and discount_code
    are typed; custom identify traits and a group's traits stay as sent under traits."""
    calls = {p.stem: json.loads(p.read_text()) for p in CALLS.glob("*.json")}
    events = {name: codec.decode(orjson.dumps(stored(m))) for name, m in calls.items()}
    assert events["alias"].previous_id == "anon-5f2c"
    assert events["group"].group_id == "acct-77"
    assert events["group"].traits == calls["group"]["traits"]
    identify = events["identify_custom_traits"]
    assert dict(identify.traits) == {
        "plan": "pro",
        "logins": 12,
        "company": {"name": "Anna's Shop", "size": 3},
    }
    assert (identify.emails, identify.first_name) == (("anna@example.com",), "Anna")
    assert events["page_category"].page_category == "Catalog"
    order = events["order_product_details"]
    assert order.coupon == "SUMMER10"
    tee, cap = order.items
    assert (tee.id, tee.sku, tee.url) == ("P-1", "TEE-RED-M", "https://shop.example/p/tee")
    assert tee.image_url == "https://shop.example/img/tee.jpg"
    assert dict(tee.properties) == {
        "variant_id": "P-1-RM",
        "variant_name": "Red, medium",
        "product_type": "variable",
    }
    assert (cap.id, cap.sku, dict(cap.properties)) == ("CAP-1", "CAP-1", {"position": 2})


def test_a_clock_set_ahead_is_clamped_and_a_backfill_is_kept() -> None:
    """A time more than five minutes past receipt (after the sentAt correction) becomes the
    receipt time, the sender's kept as occurred_at_original; a time in 1970 is kept as sent
    (each destination applies its platform's window)."""
    ahead = codec.decode(orjson.dumps(stored(json.loads((CALLS / "clock_ahead.json").read_text()))))
    assert ahead.occurred_at == RECEIVED
    assert ahead.occurred_at_original == datetime(2099, 1, 1, tzinfo=UTC)
    skewed = json.loads((CALLS / "clock_behind_corrected.json").read_text())
    corrected = codec.decode(orjson.dumps(stored(skewed)))
    assert corrected.occurred_at == datetime(2024, 5, 18, 13, 29, tzinfo=UTC)
    assert corrected.occurred_at_original is None
    old = json.loads((CALLS / "backfill_1970.json").read_text())
    backfill = codec.decode(orjson.dumps(stored(old)))
    assert backfill.occurred_at == datetime(1970, 1, 2, tzinfo=UTC)
    assert backfill.occurred_at_original is None
