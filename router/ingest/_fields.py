"""Field coercion for Segment messages: ids, money, times, items (generic checks: router.fields)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

# The generic checks live beneath ingest and identity; ingest's callers still use them from here.
from router.fields import (
    EMPTY,
    MAX_STRING,
    InvalidEvent,
    as_obj,
    as_str,
    at,
    expected,
    json_type,
    opt_obj,
    opt_str,
    too_long,
)

__all__ = [  # the re-exported generic checks; everything defined here is public too
    "EMPTY",
    "MAX_STRING",
    "InvalidEvent",
    "as_obj",
    "as_str",
    "at",
    "expected",
    "json_type",
    "opt_obj",
    "opt_str",
]

#: ``Item`` keyword arguments: the fields of one product line that were sent.
ItemFields = dict[str, Any]

# The ``as_*`` functions take a value that is present (not ``None``) and the path of the
# object holding it (``base``) and its ``key``, which name the field only if it is wrong.
# Paths here are relative to the message; ``parse_message`` prefixes ``batch[3]``.

#: Largest quantity of one product line (fits every platform's 32-bit integer fields).
MAX_QUANTITY: Final = 1_000_000_000
#: Every amount (price, revenue, tax, ...) is below this in magnitude, so that an order's total
#: (Σ price × quantity) stays exact and far from ``Decimal``'s exponent limit.
MAX_AMOUNT: Final = 10**15
_MAX_AMOUNT_TEXT: Final = "10^15"


def as_id(v: object, base: str, key: str) -> str | None:
    """An identifier sent as a string or an integer, as a string; ``""`` counts as not sent."""
    if type(v) is str:
        if len(v) > MAX_STRING:
            raise too_long(base, key)
        return v or None
    if type(v) is int:
        return str(v)
    if type(v) is float and v.is_integer():
        return str(int(v))
    raise expected(base, key, "a string or an integer", v)


def as_strs(v: object, base: str, key: str) -> tuple[str, ...]:
    """A string or a list of strings, stripped, without empties and duplicates."""
    if type(v) is str:
        v = v.strip()
        return (v,) if v else ()
    if type(v) is not list:
        raise expected(base, key, "a string or a list of strings", v)
    seen: dict[str, None] = {}
    for i, s in enumerate(v):
        s = as_str(s, base, f"{key}[{i}]")
        if s is not None and (s := s.strip()):
            seen[s] = None
    return tuple(seen)


def as_money(v: object, base: str, key: str) -> str:
    """An amount as its exact decimal text, the stored form (``Decimal(text)`` is the value).

    A JSON number keeps the digits it was sent with (a float's shortest repr, so ``95.5``
    stays ``95.5``); a numeric string is checked. Decimals are built only with the Event.
    Amounts must be below ``MAX_AMOUNT`` in magnitude.
    """
    if type(v) is int:
        if -MAX_AMOUNT < v < MAX_AMOUNT:
            return str(v)
    elif type(v) is float:
        if -MAX_AMOUNT < v < MAX_AMOUNT:
            return repr(v)  # JSON has no inf or nan: always a finite decimal
    elif type(v) is str:
        try:
            d = Decimal(v)
        except InvalidOperation:
            d = Decimal("NaN")
        if not d.is_finite():
            raise InvalidEvent(at(base, key), f"expected a number, got {v[:40]!r}")
        if -MAX_AMOUNT < d < MAX_AMOUNT:
            return str(d)
    else:
        raise expected(base, key, "a number", v)
    raise InvalidEvent(
        at(base, key), f"expected an amount below {_MAX_AMOUNT_TEXT} in magnitude, got {v!r:.40}"
    )


def as_count(v: object, base: str, key: str) -> int:
    """A count from 0 to ``MAX_QUANTITY``, also sent as ``2.0`` or ``"2"``."""
    if type(v) is int and 0 <= v <= MAX_QUANTITY:
        return v
    if (type(v) is float and v.is_integer() and 0 <= v <= MAX_QUANTITY) or (
        type(v) is str and v.isdigit() and v.isascii() and len(v) <= 10 and int(v) <= MAX_QUANTITY
    ):
        return int(v)
    raise InvalidEvent(
        at(base, key), f"expected an integer from 0 to {MAX_QUANTITY:,}, got {v!r:.40}"
    )


#: Why a time that parses is still refused.
OUT_OF_RANGE: Final = "outside the years 1 to 9999 in UTC"


def as_time(v: object, base: str, key: str) -> datetime:
    """An ISO 8601 time in UTC; a time without an offset is taken as UTC."""
    if type(v) is not str:
        raise expected(base, key, "an ISO 8601 string", v)
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise InvalidEvent(at(base, key), f"not an ISO 8601 time: {v[:40]!r}") from None
    if t.tzinfo is UTC:
        return t
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    try:
        return t.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise InvalidEvent(at(base, key), f"{OUT_OF_RANGE}: {v[:40]!r}") from None


def as_currency(v: object, base: str, key: str) -> str:
    """An ISO 4217 code: three letters, uppercased."""
    if type(v) is not str:
        raise expected(base, key, "a three-letter currency code", v)
    if len(v) != 3 or not (v.isascii() and v.isalpha()):
        raise InvalidEvent(at(base, key), f"expected a three-letter currency code, got {v[:40]!r}")
    return v.upper()


def birth_date(v: str) -> str:
    """``YYYY-MM-DD`` when ``v`` is an ISO date or date-time, else ``v`` as sent."""
    try:
        return date.fromisoformat(v).isoformat()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(v).date().isoformat()
    except ValueError:
        return v


def opt_money(d: Mapping[str, Any], key: str, base: str) -> str | None:
    """The amount at ``key``, or ``None`` when absent or null."""
    v = d.get(key)
    return None if v is None else as_money(v, base, key)


# --- commerce ------------------------------------------------------------------------------

#: The properties an event's value may come from, in the default order of preference: the
#: order total the WooCommerce seeds send, then Segment's revenue, then value.
VALUE_KEYS: Final = ("total", "revenue", "value")
_PRODUCT_IDS: Final = ("product_id", "sku", "id")
_ITEM_TEXTS: Final = ("brand", "category", "variant", "sku", "url", "image_url")
#: Product keys a typed item field takes (the id keys included).
_ITEM_KEYS: Final = frozenset({*_ITEM_TEXTS, "product_id", "id", "name", "price", "quantity"})
_ADJUSTMENTS: Final = ("tax", "shipping", "discount")
_SINGLE_PRODUCT_IDS: Final = ("product_id", "sku")


def commerce_into(
    kw: dict[str, Any], props: Mapping[str, Any], value_from: tuple[str, ...] = VALUE_KEYS
) -> None:
    """Order id, value, currency, tax, shipping, discount, coupon and items from ``properties``;
    the value is the first of the ``value_from`` properties sent, else Σ price × quantity."""
    get = props.get
    lines = items(props)
    if lines:
        kw["items"] = lines
    v = get("order_id")
    if v is None:
        v = get("orderId")
        if v is not None:
            kw["order_id"] = as_id(v, "properties", "orderId")
    else:
        kw["order_id"] = as_id(v, "properties", "order_id")
    kw["value"] = _value(props, value_from, lines)
    if (v := get("currency")) is not None:
        kw["currency"] = as_currency(v, "properties", "currency")
    if not props.keys().isdisjoint(_ADJUSTMENTS):
        for key in _ADJUSTMENTS:
            if (v := get(key)) is not None:
                kw[key] = as_money(v, "properties", key)
    if (v := get("coupon")) is not None:
        kw["coupon"] = as_str(v, "properties", "coupon")
    elif (v := get("discount_code")) is not None:
        kw["coupon"] = as_str(v, "properties", "discount_code")


def _value(
    props: Mapping[str, Any], value_from: tuple[str, ...], lines: tuple[ItemFields, ...]
) -> str | None:
    """The first amount of ``value_from`` sent, else Σ price × quantity."""
    for key in value_from:
        v = props.get(key)
        if v is not None:
            return as_money(v, "properties", key)
    return items_total(lines)


def items(props: Mapping[str, Any]) -> tuple[ItemFields, ...]:
    """``products[]``, or the one product of a single-product event (``product_id`` or ``sku``)."""
    products = props.get("products")
    if products is None:
        if "product_id" in props or "sku" in props:
            return (item(props, "properties", _SINGLE_PRODUCT_IDS, keep_rest=False),)
        return ()
    if type(products) is not list:
        raise expected("properties", "products", "an array", products)
    out = []
    for i, p in enumerate(products):
        if type(p) is not dict:
            raise expected("properties", f"products[{i}]", "an object", p)
        try:
            out.append(item(p, "", _PRODUCT_IDS))
        except InvalidEvent as e:  # paths inside a product are built only on error
            raise e.under(f"properties.products[{i}]") from None
    return tuple(out)


def item(
    p: Mapping[str, Any], base: str, id_keys: tuple[str, ...], *, keep_rest: bool = True
) -> ItemFields:
    """One line of a cart or order from a product object, as ``Item`` keyword arguments.

    Only the fields sent are present: the dict is already the stored form of the item, and
    ``Item(**fields)`` builds the real thing when an ``Event`` is built. With ``keep_rest``
    (a ``products[]`` entry), the keys no field takes go to the item's ``properties``; a
    single-product event's other keys are the event's own properties instead.
    """
    get = p.get
    out: ItemFields = {}
    for key in id_keys:
        if (v := get(key)) is not None and (pid := as_id(v, base, key)) is not None:
            out["id"] = pid
            break
    if (v := get("name")) is not None and (text := as_str(v, base, "name")) is not None:
        out["name"] = text
    if (v := get("price")) is not None:
        out["price"] = as_money(v, base, "price")
    if (v := get("quantity")) is not None:
        out["quantity"] = as_count(v, base, "quantity")
    if not p.keys().isdisjoint(_ITEM_TEXTS):  # most products have none of them
        for key in _ITEM_TEXTS:
            if (v := get(key)) is not None and (text := as_str(v, base, key)) is not None:
                out[key] = text
    if keep_rest and not p.keys() <= _ITEM_KEYS:
        rest = {k: v for k, v in p.items() if k not in _ITEM_KEYS and v is not None}
        if rest:
            out["properties"] = rest
    return out


def items_total(lines: tuple[ItemFields, ...]) -> str | None:
    """Σ price × quantity (quantity 1 when not sent) over the lines that have a price."""
    total = None
    for line in lines:
        text = line.get("price")
        if text is not None:
            price, quantity = Decimal(text), line.get("quantity")
            amount = price if quantity is None else price * quantity
            total = amount if total is None else total + amount
    return None if total is None else str(total)
