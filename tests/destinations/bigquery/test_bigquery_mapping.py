"""BigQuery rows beyond the golden files: the schema they fill, hashing, consent, numbers."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson
import pytest

from destinations.bigquery.mapping import build_row, numeric, timestamp
from destinations.bigquery.schema import COLUMNS, Column
from router import privacy
from router.destination import MappingError
from router.event import Item
from router.testing.events import make_event


def _keys(columns: tuple[Column, ...]) -> list[str]:
    return [column.name for column in columns]


def test_a_row_has_exactly_the_columns_of_the_schema() -> None:
    """Every column is filled (null when empty) and no key is outside the schema, nested too."""
    row = build_row(make_event(gclid="Cj0KCQ"))["json"]
    assert list(row) == _keys(COLUMNS)
    nested = {column.name: column for column in COLUMNS if column.fields}
    assert list(row["items"][0]) == _keys(nested["items"].fields)
    assert list(row["consent"]) == _keys(nested["consent"].fields)
    assert list(row["click_ids"]) == _keys(nested["click_ids"].fields)


def test_the_insert_id_is_the_event_id() -> None:
    """insertId = event_id, so BigQuery drops a re-sent event (best effort)."""
    row = build_row(make_event(event_id="msg-42"))
    assert row["insertId"] == "msg-42" == row["json"]["event_id"]


def test_identifiers_are_hashed_with_googles_normalisation_and_never_sent_raw() -> None:
    """Emails lose gmail dots and case, phones become E.164 with +, then SHA-256 hex; the raw
    values appear nowhere in the row."""
    event = make_event(
        emails=(" Jane.Doe@GMail.com", "x@example.org"), phones=("0044 20 7946 0958",)
    )
    row = build_row(event)["json"]
    assert row["email_sha256"] == [
        hashlib.sha256(b"janedoe@gmail.com").hexdigest(),
        hashlib.sha256(b"x@example.org").hexdigest(),
    ]
    assert row["phone_sha256"] == [hashlib.sha256(b"+442079460958").hexdigest()]
    text = orjson.dumps(row).decode().lower()
    assert "jane.doe" not in text and "example.org" not in text and "7946" not in text


def test_an_already_hashed_email_passes_through() -> None:
    """A sender's own SHA-256 is kept (lowercased), not hashed twice."""
    digest = hashlib.sha256(b"jane@example.com").hexdigest()
    assert build_row(make_event(emails=(digest.upper(),)))["json"]["email_sha256"] == [digest]


def test_an_event_without_user_data_has_no_identity_in_its_row() -> None:
    """What the consent policy strips (IP, user agent, ids, contacts, click ids) is null or
    empty; the conversion and the consent record stay."""
    event = privacy.without_user_data(make_event(gclid="Cj0KCQ", order_id="WC-9"))
    row = build_row(event)["json"]
    for column in ("client_ip", "user_agent", "user_id", "anonymous_id", "click_ids"):
        assert row[column] is None
    assert row["client_ip_class"] == "missing"
    assert row["email_sha256"] == [] and row["phone_sha256"] == []
    assert (row["order_id"], row["value"]) == ("WC-9", "59.90")
    assert row["consent"]["ad_user_data"] == "granted"


def test_properties_are_a_json_encoded_string() -> None:
    """A JSON column takes a JSON-encoded string in insertAll (an object is refused)."""
    event = make_event(properties={"plan": "pro", "seats": 3, "tags": ["a"]})
    encoded = build_row(event)["json"]["properties"]
    assert isinstance(encoded, str)
    assert orjson.loads(encoded) == {"plan": "pro", "seats": 3, "tags": ["a"]}


def test_times_are_rfc3339_utc_with_microseconds() -> None:
    """TIMESTAMP values are strings BigQuery parses exactly, never epoch numbers."""
    row = build_row(make_event())["json"]
    assert row["occurred_at"] == "2026-11-20T14:30:05.123000Z"


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("59.90", "59.90"),
        ("1E+3", "1000"),
        ("-0.5", "-0.5"),
        ("1.1234567895", "1.123456790"),
        ("0.0000000005", "0.000000001"),
        ("99999999999999999999999999999.999999999", "99999999999999999999999999999.999999999"),
        ("-0.0", "-0.0"),
        ("1E+2", "100"),
        ("1E-7", "0.0000001"),
    ],
)
def test_numerics_are_decimal_strings_rounded_to_nine_places(value: str, sent: str) -> None:
    """Money goes as a string (no float on the way) with at most 9 decimals, like NUMERIC."""
    assert numeric(Decimal(value), "value") == sent


@pytest.mark.parametrize("value", ["1e29", "-1e30", "NaN", "Infinity"])
def test_a_number_numeric_cannot_hold_is_a_mapping_error(value: str) -> None:
    """Too large or not finite: refused at mapping, never sent to be refused by BigQuery."""
    with pytest.raises(MappingError) as refused:
        build_row(make_event(value=Decimal(value)))
    assert refused.value.reason == "numeric_out_of_range"


def test_an_item_price_numeric_cannot_hold_names_the_item() -> None:
    """The error names the item and its field, as the dead letter shows it."""
    items = (Item(id="A", price=Decimal("1")), Item(id="B", price=Decimal("1e29")))
    with pytest.raises(MappingError, match=r"^items\[1\]\.price = 1E\+29 is not"):
        build_row(make_event(items=items))


def test_items_carry_product_id_name_category_price_and_quantity() -> None:
    """Canonical items become REPEATED RECORD entries, prices as NUMERIC strings."""
    item = Item(id="SKU-1", name="Mug", price=Decimal("19.95"), quantity=2, category="Kitchen")
    [entry] = build_row(make_event(items=(item,)))["json"]["items"]
    assert entry == {
        "product_id": "SKU-1",
        "name": "Mug",
        "category": "Kitchen",
        "price": "19.95",
        "quantity": 2,
        "brand": None,
        "variant": None,
    }


def test_timestamp_converts_to_utc() -> None:
    """A non-UTC aware time is written in UTC."""
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp(moment) == "2025-12-31T23:00:00.000000Z"


def _row(**overrides: Any) -> dict[str, Any]:
    return build_row(make_event(**overrides))["json"]


def test_no_click_ids_is_a_null_record() -> None:
    """An event without any click or device id has click_ids NULL rather than a record of
    nulls."""
    assert _row(fbc=None, fbp=None, ga_client_id=None)["click_ids"] is None


def test_personal_keys_of_properties_are_left_out() -> None:
    """An email, phone or name a sender put in properties does not reach the JSON column raw."""
    properties = {"Email": "jane@example.com", "phone": "+4420", "firstName": "Jane", "plan": "pro"}
    encoded = _row(properties=properties)["properties"]
    assert orjson.loads(encoded) == {"plan": "pro"}
