"""The stored form of an event round-trips exactly; the wire form has every key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from router import codec
from router.event import EVENT_FIELDS, Consent, Item
from router.testing.events import make_event


def test_stored_form_round_trips() -> None:
    """decode(encode(event)) gives back an equal event, money and times intact."""
    event = make_event(value=Decimal("1234.5600"), other_ids={"ttclid": "abc"})
    assert codec.decode(codec.encode(event)) == event


def test_stored_form_leaves_out_empty_fields() -> None:
    """The stored JSON has no nulls or empty lists."""
    stored = orjson.loads(codec.encode(make_event(phones=(), coupon=None)))
    assert "phones" not in stored and "coupon" not in stored
    assert stored["value"] == "59.90"


def test_wire_form_has_every_key_and_decimal_strings() -> None:
    """The full form lists every canonical key, money as strings, times as RFC 3339 UTC."""
    event = make_event(consent=Consent())
    wire = orjson.loads(codec.dumps(codec.to_dict(event, compact=False)))
    assert list(wire) == list(EVENT_FIELDS)
    assert wire["value"] == "59.90"
    assert wire["items"][0] == {"id": "SKU-1", "name": "Mug", "price": "19.95", "quantity": 2}
    assert wire["occurred_at"] == "2026-11-20T14:30:05.123000Z"
    assert wire["consent"]["ad_user_data"] == "unknown"
    assert codec.from_dict(wire) == event


def test_fields_encode_to_the_same_stored_event() -> None:
    """Ingest's shortcut (encode the fields, never build the Event) stores the same event."""
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    from router.ingest.names import NameMap
    from router.ingest.segment import parse_fields, parse_message

    message = json.loads(Path("tests/fixtures/segment/order_completed.json").read_text())
    kwargs: dict[str, Any] = {
        "store": "shop",
        "received_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        "default_type": "track",
        "names": NameMap(),
        "resolve_ip": lambda ip: (ip, "payload", "public"),
    }
    sparse = {"type": "track", "event": "Signed Up", "userId": "u", "messageId": "m"}
    sparse["properties"] = {"plan": "pro"}  # no referrer, value or items: None fields
    for sent in (message, sparse):
        fields = parse_fields(sent, **kwargs)
        event = parse_message(sent, **kwargs)
        stored = codec.encode_fields(fields)
        assert codec.decode(stored) == event
        wire = orjson.loads(codec.dumps(codec.to_dict(event, compact=False)))
        fast = codec.dumps(codec.stored_to_wire(stored))
        assert orjson.loads(fast) == wire
        assert fast.startswith(stored[:-1])  # the stored JSON as is, completed after it
    assert b"null" in codec.encode_fields(parse_fields(sparse, **kwargs))


def test_integers_beyond_64_bits_are_written_with_every_digit() -> None:
    """orjson writes only 64-bit integers; codec.dumps writes bigger ones exactly."""
    big = 2**64 + 5
    data = {"properties": {"n": big, "m": [-big, 2**64 - 1], "ok": 1}, "t": (big,)}
    assert codec.dumps(data) == (
        b'{"properties":{"n":18446744073709551621,"m":[-18446744073709551621,'
        b'18446744073709551615],"ok":1},"t":[18446744073709551621]}'
    )


def test_a_decoded_event_is_the_event_its_init_builds_with_its_own_empty_mappings() -> None:
    """decode skips the attrs __init__: the result is equal, field for field and in order,
    and a default mapping is the event's own, never shared with another decoded event."""
    original = make_event(traits={}, other_ids={})  # built by the attrs __init__
    stored = codec.encode(original)
    one, other = codec.decode(stored), codec.decode(stored)
    assert one == original
    assert list(vars(one)) == list(vars(original)) == list(EVENT_FIELDS)
    assert one.traits == {} and one.traits is not other.traits
    assert one.items[0] == Item(id="SKU-1", name="Mug", price=Decimal("19.95"), quantity=2)
    assert one.items[0].properties is not other.items[0].properties
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.name = "lead"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "named"),
    [({"colour": "red"}, "colour"), ({"event_id": None}, "event_id")],
    ids=["an unknown field", "a missing required field"],
)
def test_a_stored_event_with_a_field_its_class_lacks_or_needs_is_refused_by_name(
    change: dict[str, Any], named: str
) -> None:
    """A stored body that does not fit the Event class fails as Event(**) would, naming the
    field, rather than decoding to an event that is missing one or carries a stray one."""
    data = orjson.loads(codec.encode(make_event()))
    data.update(change)
    data = {key: value for key, value in data.items() if value is not None}
    with pytest.raises(TypeError, match=named):
        codec.from_dict(data)


def test_a_class_whose_init_validates_cannot_take_the_trusted_constructor() -> None:
    """A validator added to a class one day must not be bypassed by decode: refused at once."""

    @attrs.frozen(slots=False)
    class Checked:
        size: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(TypeError, match="size"):
        codec.trusted_init(Checked)
