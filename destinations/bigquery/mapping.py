"""Pure mapping of one canonical event to one ``insertAll`` row (``insertId`` = ``event_id``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any, Final

from router.sdk import Event, Item, MappingError, dumps, hash_all, hash_email, hash_phone

#: NUMERIC holds 29 digits before the point and 9 after it.
NUMERIC_SCALE: Final = Decimal("1e-9")
NUMERIC_LIMIT: Final = Decimal("1e29")
NUMERIC_DECIMALS: Final = 9
NUMERIC_DIGITS: Final = 29
INT64_MAX: Final = 2**63 - 1
#: Enough digits for any NUMERIC (38) and then some, so rounding never loses the integer part.
_WIDE: Final = Context(prec=60)
#: Top-level property keys that hold a person's data in Segment's spec: left out of the
#: ``properties`` column, which is kept as long as the table is (the identity columns hold
#: only hashes).
PERSONAL_PROPERTIES: Final = frozenset(
    {"email", "phone", "firstname", "first_name", "lastname", "last_name", "birthday", "address"}
)


def build_row(event: Event) -> dict[str, Any]:
    """The ``rows[]`` entry for this event: its ``insertId`` and the row as ``json``."""
    return {"insertId": event.event_id, "json": row_values(event)}


def row_values(event: Event) -> dict[str, Any]:
    """One value per column of schema.COLUMNS; identifiers hashed, never raw."""
    return {
        "event_id": event.event_id,
        "store": event.store,
        "name": event.name,
        "source_name": event.source_name,
        "source_type": event.source_type,
        "occurred_at": timestamp(event.occurred_at),
        "received_at": timestamp(event.received_at),
        "action_source": event.action_source,
        "page_url": event.page_url,
        "referrer": event.referrer,
        "client_ip": event.client_ip,
        "client_ip_origin": event.client_ip_origin,
        "client_ip_class": event.client_ip_class,
        "user_agent": event.user_agent,
        "locale": event.locale,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "email_sha256": hash_all(event.emails, hash_email, "google"),
        "phone_sha256": hash_all(event.phones, hash_phone, "google"),
        "click_ids": click_ids(event),
        "order_id": event.order_id,
        "currency": event.currency.strip().upper() if event.currency else None,
        "value": numeric(event.value, "value"),
        "tax": numeric(event.tax, "tax"),
        "shipping": numeric(event.shipping, "shipping"),
        "discount": numeric(event.discount, "discount"),
        "coupon": event.coupon,
        "items": [item_values(item, index) for index, item in enumerate(event.items)],
        "consent": {
            "ad_user_data": event.consent.ad_user_data,
            "ad_personalization": event.consent.ad_personalization,
            "analytics": event.consent.analytics,
            "tcf_string": event.consent.tcf_string,
        },
        # a JSON column takes its value as a JSON-encoded string in insertAll rows
        "properties": dumps(kept_properties(event.properties)).decode(),
    }


def kept_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The sender's properties without the top-level keys that name a person's data."""
    return {k: v for k, v in properties.items() if k.lower() not in PERSONAL_PROPERTIES}


def click_ids(event: Event) -> dict[str, str | None] | None:
    """The click and device ids, or NULL when the event has none (consent may have removed them)."""
    ids = {
        "gclid": event.gclid,
        "gbraid": event.gbraid,
        "wbraid": event.wbraid,
        "fbc": event.fbc,
        "fbp": event.fbp,
        "ga_client_id": event.ga_client_id,
        "ga_session_id": event.ga_session_id,
        "spotify_device_id": event.spotify_device_id,
    }
    for value in ids.values():
        if value is not None:
            return ids
    return None


def item_values(item: Item, index: int) -> dict[str, Any]:
    """One ``items`` record."""
    if item.quantity is not None and abs(item.quantity) > INT64_MAX:
        raise MappingError(
            "quantity_out_of_range", f"items[{index}].quantity does not fit BigQuery's INT64"
        )
    return {
        "product_id": item.id,
        "name": item.name,
        "category": item.category,
        "price": numeric(item.price, "price", index),
        "quantity": item.quantity,
        "brand": item.brand,
        "variant": item.variant,
    }


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, the TIMESTAMP form BigQuery parses exactly.

    The codec writes it in C (as ``isoformat`` would, years zero-padded) several times cheaper,
    but without a fraction when it is 0, which BigQuery's form keeps.
    """
    utc = moment.astimezone(UTC)
    text = dumps(utc).decode()
    return text[1:-1] if utc.microsecond else f"{text[1:-2]}.000000Z"


def numeric(value: Decimal | None, field: str, item: int | None = None) -> str | None:
    """A NUMERIC as a decimal string (a JSON number would pass through a float): rounded
    half away from zero to 9 decimals, as BigQuery rounds; too large is a mapping error
    naming ``field`` (of ``items[item]`` when given: the name is only built then)."""
    if value is None:
        return None
    text = str(value)
    if "E" not in text and value.is_finite():  # plain notation: str is format(value, "f")
        whole, _, fraction = text.lstrip("-").partition(".")
        if len(fraction) <= NUMERIC_DECIMALS and len(whole) <= NUMERIC_DIGITS:
            return text  # nothing to round, and it fits
    try:
        rounded = value.quantize(NUMERIC_SCALE, rounding=ROUND_HALF_UP, context=_WIDE)
    except InvalidOperation:
        rounded = None
    if rounded is None or not rounded.is_finite() or rounded.copy_abs() >= NUMERIC_LIMIT:
        name = field if item is None else f"items[{item}].{field}"
        raise MappingError(
            "numeric_out_of_range",
            f"{name} = {value} is not a number BigQuery's NUMERIC holds"
            " (at most 29 digits before the point)",
        )
    return format(value if rounded == value else rounded, "f")
