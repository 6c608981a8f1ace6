"""Parsing Segment HTTP Tracking API messages into canonical events."""

# Case tables keep one case per line (``# fmt: skip``) so each reads as one row.
# ruff: noqa: E501

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from router.event import ACTION_SOURCES, UNKNOWN_CONSENT, Consent, Event, Item
from router.ingest.names import DEFAULT_NAMES, NameMap
from router.ingest.segment import InvalidEvent, parse_message

FIXTURES = Path(__file__).parent.parent / "fixtures" / "segment"
RECEIVED = datetime(2024, 5, 18, 13, 30, tzinfo=UTC)


class FakeResolver:
    """Records what the parser hands over and answers a fixed classification."""

    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def __call__(self, ip: str | None) -> tuple[str | None, Any, str]:
        self.calls.append(ip)
        return ("198.51.100.7", "header", "public") if ip is None else (ip, "payload", "public")


def msg(**fields: Any) -> dict[str, Any]:
    """A minimal valid track message with ``fields`` on top (a ``None`` removes a key)."""
    m: dict[str, Any] = {"type": "track", "event": "Thing Done", "userId": "u1", "messageId": "m1"}
    m.update(fields)
    return {k: v for k, v in m.items() if v is not None}


def parse(
    m: object,
    *,
    default_type: str | None = None,
    names: NameMap = DEFAULT_NAMES,
    path: str = "",
    resolve_ip: FakeResolver | None = None,
) -> Event:
    return parse_message(
        m,
        store="shop",
        received_at=RECEIVED,
        default_type=default_type,
        names=names,
        resolve_ip=resolve_ip or FakeResolver(),
        path=path,
    )


def error(m: object, **kwargs: Any) -> str:
    """The ``path: message`` of the error parsing ``m`` raises."""
    with pytest.raises(InvalidEvent) as info:
        parse(m, **kwargs)
    assert str(info.value) == f"{info.value.path}: {info.value.message}"
    return str(info.value)


# --- a realistic message ------------------------------------------------------------------


def test_order_completed_fixture() -> None:
    """A realistic Order Completed message yields the complete canonical event."""
    m = json.loads((FIXTURES / "order_completed.json").read_text())
    event = parse(m, default_type="track")
    assert event == Event(
        event_id="8f14e45f-ceea-467a-9575-2b1d2a6f5c1e",
        store="shop",
        name="purchase",
        source_name="Order Completed",
        source_type="track",
        occurred_at=datetime(2024, 5, 18, 13, 20, 0, 123000, tzinfo=UTC),
        received_at=RECEIVED,
        action_source="web",
        page_url="https://shop.example/thanks",
        referrer="https://shop.example/cart",
        client_ip="203.0.113.42",
        client_ip_origin="payload",
        client_ip_class="public",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4)",
        user_id="cust-48213",
        emails=("anna@example.com",),
        phones=("+46701234567",),
        fbp="fb.1.1716030000000.1234567890",
        order_id="SO-10293",
        value=Decimal("95.5"),
        currency="SEK",
        items=(
            Item(id="P-1", name="Tee", price=Decimal("25"), quantity=2),
            Item(id="P-2", name="Cap", price=Decimal("45.5"), quantity=1),
        ),
        properties=m["properties"],
    )
    assert event.properties is m["properties"]


# --- types, names, ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "source_name", "name"),
    [
        ({"type": "track", "event": "Product Added"}, "Product Added", "add_to_cart"),
        ({"type": "page", "event": None, "name": "Pricing"}, "Pricing", "page_view"),
        ({"type": "page", "event": None}, "page", "page_view"),
        ({"type": "screen", "event": None, "name": "Cart"}, "Cart", "page_view"),
        ({"type": "screen", "event": None}, "screen", "page_view"),
        ({"type": "identify", "event": None}, "identify", "identify"),
        ({"type": "group", "event": None, "groupId": "g1"}, "group", "group"),
        ({"type": "alias", "event": None, "previousId": "a1"}, "alias", "alias"),
    ],
)
def test_each_type(fields: dict[str, Any], source_name: str, name: str) -> None:
    """Every message type parses, with its source name and canonical name."""
    event = parse(msg(**fields))
    assert (event.source_type, event.source_name, event.name) == (
        fields["type"],
        source_name,
        name,
    )


@pytest.mark.parametrize(
    ("event_name", "names", "expected"),
    [
        ("Order Completed", DEFAULT_NAMES, "purchase"),
        ("purchase", DEFAULT_NAMES, "purchase"),
        ("order completed", DEFAULT_NAMES, "purchase"),
        ("Demo Booked", NameMap({"Demo Booked": "generate_lead"}), "generate_lead"),
        ("Order Completed", NameMap({"Order Completed": "custom"}), "custom"),
    ],
)
def test_track_names_resolve_through_the_store_map(
    event_name: str, names: NameMap, expected: str
) -> None:
    """A track event's canonical name comes from the store's name map."""
    event = parse(msg(event=event_name), names=names)
    assert (event.source_name, event.name) == (event_name, expected)


@pytest.mark.parametrize(
    ("m", "default_type", "expected"),
    [
        (
            msg(type=None),
            None,
            "type: required; one of alias, group, identify, page, screen, track",
        ),
        (msg(type="Track"), None, "type: expected one of alias, group, identify, page, screen, "),
        (msg(type=["track"]), None, "type: expected one of alias, group, identify, page, screen, "),
        (msg(type="page"), "track", "type: must be 'track' on this endpoint, got 'page'"),
        (msg(event=None), None, "event: required for a track call"),
        (msg(event=""), None, "event: expected 1 to 200 characters"),
        (msg(event="x" * 201), None, "event: expected 1 to 200 characters"),
        (msg(event=7), None, "event: expected a string, got number"),
        (msg(messageId=""), None, "messageId: expected 1 to 200 characters"),
        (msg(messageId="m" * 201), None, "messageId: expected 1 to 200 characters"),
        (msg(messageId=12), None, "messageId: expected a string, got number"),
        (msg(userId=None), None, "userId: userId or anonymousId is required"),
        (msg(userId=""), None, "userId: userId or anonymousId is required"),
        (msg(userId=True), None, "userId: expected a string or an integer, got boolean"),
        (msg(anonymousId=[1]), None, "anonymousId: expected a string or an integer, got array"),
        ([1, 2], None, "body: expected a JSON object, got array"),
        ("track", None, "body: expected a JSON object, got string"),
    ],
)
def test_invalid_envelopes(m: object, default_type: str | None, expected: str) -> None:
    """A wrong type, event name, message id or missing user is refused at its path."""
    assert error(m, default_type=default_type).startswith(expected)


@pytest.mark.parametrize(
    ("m", "default_type", "source_type"),
    [
        (msg(type=None), "track", "track"),
        (msg(type="track"), "track", "track"),
        (msg(type=None, name="Home"), "page", "page"),
    ],
)
def test_endpoint_type(m: dict[str, Any], default_type: str, source_type: str) -> None:
    """A single-call endpoint supplies the type; the message may repeat it."""
    assert parse(m, default_type=default_type).source_type == source_type


@pytest.mark.parametrize(
    ("fields", "user_id", "anonymous_id"),
    [
        ({"userId": "u1"}, "u1", None),
        ({"userId": None, "anonymousId": "a1"}, None, "a1"),
        ({"userId": 42, "anonymousId": 7.0}, "42", "7"),
        ({"userId": "", "anonymousId": "a1"}, None, "a1"),
    ],
)
def test_user_ids(fields: dict[str, Any], user_id: str | None, anonymous_id: str | None) -> None:
    """userId and anonymousId are kept, numbers as strings; one of them suffices."""
    event = parse(msg(**fields))
    assert (event.user_id, event.anonymous_id) == (user_id, anonymous_id)


def test_missing_message_id_is_generated() -> None:
    """A message without messageId gets a fresh ``tl-`` id each time."""
    first, second = parse(msg(messageId=None)), parse(msg(messageId=None))
    assert first.event_id.startswith("tl-") and len(first.event_id) == 35
    assert first.event_id != second.event_id


# --- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "occurred_at"),
    [
        ({"timestamp": "2024-05-18T13:20:00Z"}, datetime(2024, 5, 18, 13, 20, tzinfo=UTC)),
        (
            {"timestamp": "2024-05-18T15:20:00.5+02:00"},
            datetime(2024, 5, 18, 13, 20, 0, 500000, tzinfo=UTC),
        ),
        ({"timestamp": "2024-05-18T13:20:00"}, datetime(2024, 5, 18, 13, 20, tzinfo=UTC)),
        (
            {"timestamp": "2024-05-18T13:20:00Z", "originalTimestamp": "2020-01-01T00:00:00Z"},
            datetime(2024, 5, 18, 13, 20, tzinfo=UTC),
        ),
        (
            # the device clock is 1 h behind: it sent 10 s after the event, 30 s before receipt
            {"originalTimestamp": "2024-05-18T12:29:20Z", "sentAt": "2024-05-18T12:29:30Z"},
            RECEIVED - timedelta(seconds=10),
        ),
        (
            {"originalTimestamp": "2024-05-18T12:29:20Z"},
            datetime(2024, 5, 18, 12, 29, 20, tzinfo=UTC),
        ),
        ({"sentAt": "2024-05-18T12:29:30Z"}, RECEIVED),
        ({}, RECEIVED),
    ],
)
def test_occurred_at(fields: dict[str, Any], occurred_at: datetime) -> None:
    """timestamp wins; else originalTimestamp corrected by sentAt; else received_at; all UTC."""
    event = parse(msg(**fields))
    assert event.occurred_at == occurred_at
    assert event.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"timestamp": "yesterday"}, "timestamp: not an ISO 8601 time: 'yesterday'"),
        ({"timestamp": 1716038400}, "timestamp: expected an ISO 8601 string, got number"),
        (
            {"originalTimestamp": "2024-05-18T12:29:20Z", "sentAt": "soon"},
            "sentAt: not an ISO 8601 time: 'soon'",
        ),
        ({"originalTimestamp": "2024-13-01"}, "originalTimestamp: not an ISO 8601 time"),
    ],
)
def test_bad_times(fields: dict[str, Any], expected: str) -> None:
    """An unparseable time is refused at its path."""
    assert error(msg(**fields)).startswith(expected)


# --- context -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "action_source"),
    [
        ({}, "web"),
        ({"context": {"action_source": "phone_call"}}, "phone_call"),
        ({"properties": {"action_source": "offline"}}, "offline"),
        (
            {"context": {"action_source": "email"}, "properties": {"action_source": "chat"}},
            "email",
        ),
        ({"type": "screen", "event": None}, "app"),
        ({"context": {"app": {"name": "Shop", "version": "3.1"}}}, "app"),
        ({"context": {"device": {"type": "iOS"}}}, "app"),
        ({"context": {"device": {"type": "android"}}}, "app"),
        ({"context": {"device": {"type": "desktop"}}}, "web"),
        ({"type": "screen", "event": None, "context": {"action_source": "web"}}, "web"),
    ],
)
def test_action_source(fields: dict[str, Any], action_source: str) -> None:
    """A stated action_source wins, else app for screens and apps, else web."""
    assert parse(msg(**fields)).action_source == action_source


def test_bad_action_source_lists_the_valid_ones() -> None:
    """An unknown action_source is refused with every valid value."""
    valid = ", ".join(sorted(ACTION_SOURCES))
    assert error(msg(properties={"action_source": "website"})) == (
        f"properties.action_source: expected one of {valid}, got 'website'"
    )


@pytest.mark.parametrize(
    ("fields", "page_url", "referrer"),
    [
        ({"context": {"page": {"url": "https://a.example/x", "referrer": "https://r.example/"}}}, "https://a.example/x", "https://r.example/"),
        ({"type": "page", "event": None, "properties": {"url": "https://a.example/p", "referrer": "https://r.example/p"}}, "https://a.example/p", "https://r.example/p"),
        ({"properties": {"url": "https://a.example/product", "referrer": "https://r.example/t"}}, None, "https://r.example/t"),
        ({"type": "page", "event": None, "context": {"page": {"url": "https://a.example/c"}}, "properties": {"url": "https://a.example/p"}}, "https://a.example/c", None),
        ({"context": {"page": {"url": ""}}}, None, None),
    ],
)  # fmt: skip
def test_page_url_and_referrer(fields: dict[str, Any], page_url: str, referrer: str) -> None:
    """context.page wins; page calls fall back to properties.url; track properties.url is a product's."""
    event = parse(msg(**fields))
    assert (event.page_url, event.referrer) == (page_url, referrer)


def test_user_agent_and_locale() -> None:
    """context.userAgent and context.locale land on the event as sent."""
    event = parse(msg(context={"userAgent": "Mozilla/5.0 (X11)", "locale": "de-CH"}))
    assert (event.user_agent, event.locale) == ("Mozilla/5.0 (X11)", "de-CH")


@pytest.mark.parametrize(
    ("fields", "handed_over", "client_ip", "origin"),
    [
        ({"context": {"ip": "203.0.113.9"}}, "203.0.113.9", "203.0.113.9", "payload"),
        ({"context": {"ip": 203}}, None, "198.51.100.7", "header"),
        ({"context": {"locale": "en-US"}}, None, "198.51.100.7", "header"),
        ({}, None, "198.51.100.7", "header"),
    ],
)
def test_client_ip_comes_from_the_resolver(
    fields: dict[str, Any], handed_over: str | None, client_ip: str, origin: str
) -> None:
    """The resolver gets context.ip when it is a string, and its answer lands on the event."""
    resolver = FakeResolver()
    event = parse(msg(**fields), resolve_ip=resolver)
    assert resolver.calls == [handed_over]
    assert (event.client_ip, event.client_ip_origin, event.client_ip_class) == (
        client_ip,
        origin,
        "public",
    )


# --- identity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"context": {"traits": {"email": " a@x.example ", "phone": ["+1 555", "+1 555", ""]}}},
            {"emails": ("a@x.example",), "phones": ("+1 555",)},
        ),
        (
            {"context": {"traits": {"email": ["a@x.example", "b@x.example", " a@x.example"]}}},
            {"emails": ("a@x.example", "b@x.example")},
        ),
        (
            {"context": {"traits": {"firstName": "Ann", "first_name": "Anna", "last_name": "Lee"}}},
            {"first_name": "Ann", "last_name": "Lee"},
        ),
        (
            {"context": {"traits": {"birthday": "1990-05-01", "gender": "f"}}},
            {"date_of_birth": "1990-05-01", "gender": "f"},
        ),
        ({"context": {"traits": {"birthday": "1990-05-01T22:00:00-05:00"}}}, {"date_of_birth": "1990-05-01"}),
        ({"context": {"traits": {"birthday": "May 1st"}}}, {"date_of_birth": "May 1st"}),
        (
            {"context": {"traits": {"address": {"street": "1 Main St", "city": "Oslo", "state": "Oslo", "postalCode": "0150", "country": "NO"}}}},
            {"street": "1 Main St", "city": "Oslo", "region": "Oslo", "postal_code": "0150", "country": "NO"},
        ),
        ({"context": {"traits": {"address": {"postal_code": "0150"}}}}, {"postal_code": "0150"}),
        (
            {"type": "identify", "event": None, "traits": {"email": "top@x.example", "lastName": "Top"}, "context": {"traits": {"email": "ctx@x.example", "firstName": "Ctx"}}},
            {"emails": ("top@x.example",), "first_name": "Ctx", "last_name": "Top"},
        ),
        ({"type": "identify", "event": None, "traits": {"email": " "}, "context": {"traits": {"email": "ctx@x.example"}}}, {"emails": ("ctx@x.example",)}),
        ({"type": "group", "event": None, "groupId": "g1", "traits": {"email": "group@x.example"}}, {"emails": ()}),
        ({"type": "track", "traits": {"email": "ignored@x.example"}}, {"emails": ()}),
    ],
)  # fmt: skip
def test_traits(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    """Traits come from context.traits, and for identify also top-level traits, which win."""
    event = parse(msg(**fields))
    assert {k: getattr(event, k) for k in expected} == expected


# --- click and device ids ------------------------------------------------------------------

OCCURRED = "2024-05-18T13:20:00Z"
OCCURRED_MS = 1716038400000


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"context": {"fbp": "fb.1.1.ctx"}}, {"fbp": "fb.1.1.ctx"}),
        ({"properties": {"fbp": "fb.1.1.props"}}, {"fbp": "fb.1.1.props"}),
        ({"context": {"cookies": {"_fbp": "fb.1.1.cookie"}}}, {"fbp": "fb.1.1.cookie"}),
        ({"context": {"fbp": "fb.1.1.ctx", "cookies": {"_fbp": "fb.1.1.cookie"}}, "properties": {"fbp": "fb.1.1.props"}}, {"fbp": "fb.1.1.ctx"}),
        ({"context": {"cookies": {"_fbp": "fb.1.1.cookie"}}, "properties": {"fbp": "fb.1.1.props"}}, {"fbp": "fb.1.1.props"}),
        ({"context": {"click_ids": {"gclid": "G-click"}}, "properties": {"gclid": "G-props"}}, {"gclid": "G-click"}),
        ({"context": {"fbc": "fb.1.1.ctx"}}, {"fbc": "fb.1.1.ctx"}),
        ({"context": {"cookies": {"_fbc": "fb.1.1.cookie"}}}, {"fbc": "fb.1.1.cookie"}),
        ({"context": {"page": {"url": "https://s.example/?a=1&fbclid=IwAR0x&b=2"}}}, {"fbc": f"fb.1.{OCCURRED_MS}.IwAR0x"}),
        ({"context": {"cookies": {"_fbc": "fb.1.1.cookie"}, "page": {"url": "https://s.example/?fbclid=IwAR0x"}}}, {"fbc": "fb.1.1.cookie"}),
        ({"context": {"page": {"url": "https://s.example/p?gclid=Cj0%2BKC&gbraid=0AAA&wbraid=Ck1#top"}}}, {"gclid": "Cj0+KC", "gbraid": "0AAA", "wbraid": "Ck1"}),
        ({"context": {"gclid": "G-ctx", "page": {"url": "https://s.example/?gclid=G-url"}}}, {"gclid": "G-ctx"}),
        ({"context": {"page": {"url": "https://s.example/?gclid="}}}, {"gclid": None}),
        ({"context": {"ga_client_id": "111.222"}}, {"ga_client_id": "111.222"}),
        ({"properties": {"client_id": "333.444"}}, {"ga_client_id": "333.444"}),
        ({"context": {"client_id": "333.444", "ga_client_id": "111.222"}}, {"ga_client_id": "111.222"}),
        ({"context": {"cookies": {"_ga": "GA1.1.123.456"}}}, {"ga_client_id": "123.456"}),
        ({"context": {"cookies": {"_ga": "GA1.2.987654321.1716000000"}}}, {"ga_client_id": "987654321.1716000000"}),
        ({"context": {"cookies": {"_ga": "garbage"}}}, {"ga_client_id": None}),
        ({"integrations": {"Google Analytics 4": {"clientId": "5.6", "sessionId": 1716038000}}}, {"ga_client_id": "5.6", "ga_session_id": "1716038000"}),
        ({"integrations": {"Google Analytics 4": True}}, {"ga_client_id": None}),
        ({"context": {"cookies": {"_ga": "GA1.1.1.2"}}, "integrations": {"Google Analytics 4": {"clientId": "5.6"}}}, {"ga_client_id": "1.2"}),
        ({"context": {"ga_session_id": "1716038000"}}, {"ga_session_id": "1716038000"}),
        ({"properties": {"session_id": 1716038001}}, {"ga_session_id": "1716038001"}),
        ({"context": {"spotify_device_id": "sp-ctx"}}, {"spotify_device_id": "sp-ctx"}),
        ({"context": {"cookies": {"_spdt": "sp-cookie"}}}, {"spotify_device_id": "sp-cookie"}),
    ],
)  # fmt: skip
def test_click_and_device_ids(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each id is found in context, click_ids, properties, cookies or the page URL, first wins."""
    event = parse(msg(timestamp=OCCURRED, **fields))
    assert {k: getattr(event, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("cookies", "device_id"),
    [
        ({"__spdt": "sp-new"}, "sp-new"),
        ({"__pdst": "sp-older"}, "sp-older"),
        ({"_spdt": "sp-oldest"}, "sp-oldest"),
        ({"_spdt": "sp-oldest", "__pdst": "sp-older", "__spdt": "sp-new"}, "sp-new"),
        ({"_spdt": "sp-oldest", "__pdst": "sp-older"}, "sp-older"),
    ],
)
def test_spotify_device_id_from_every_pixel_cookie(cookies: dict[str, str], device_id: str) -> None:
    """The Spotify Pixel's ``__spdt`` cookie fills device_id, else the older ``__pdst`` or ``_spdt``."""
    event = parse(msg(context={"cookies": cookies}))
    assert event.spotify_device_id == device_id
    assert not set(cookies) & set(event.other_ids)


@pytest.mark.parametrize(
    ("context", "other_ids"),
    [
        ({"cookies": {"_ttp": "2a8b7c", "_fbp": "fb.1.1.x", "_scid": 12345}}, {"_ttp": "2a8b7c", "_scid": "12345"}),
        ({"click_ids": {"ttclid": "E.C.P.abc", "gclid": "G1", "msclkid": "m-1"}}, {"ttclid": "E.C.P.abc", "msclkid": "m-1"}),
        ({"click_ids": {"ttclid": "from-clicks"}, "cookies": {"ttclid": "from-cookie"}}, {"ttclid": "from-clicks"}),
        ({"cookies": {"OptanonConsent": "isGpcEnabled=0&datestamp=Sat May 18", "prefs": {"a": 1}, "flag": True, "blank": ""}}, {}),
    ],
)  # fmt: skip
def test_other_ids(context: dict[str, Any], other_ids: dict[str, str]) -> None:
    """Id-like cookies and click ids without a field of their own land in other_ids."""
    assert parse(msg(context=context)).other_ids == other_ids


# --- commerce ------------------------------------------------------------------------------

PRODUCTS = [
    {"product_id": "p1", "price": 10, "quantity": 2},
    {"sku": "s2", "price": "2.50"},
    {"id": "i3", "quantity": 4},
]


@pytest.mark.parametrize(
    ("event_name", "properties", "value"),
    [
        ("Order Completed", {"revenue": 90, "total": 100, "value": 110}, Decimal(100)),
        ("Order Completed", {"revenue": 90, "value": 110}, Decimal(90)),
        ("Order Completed", {"value": 110}, Decimal(110)),
        ("Order Completed", {"products": PRODUCTS}, Decimal("22.50")),
        ("Order Refunded", {"revenue": -90, "value": 110}, Decimal(-90)),
        ("Checkout Started", {"revenue": 90, "total": 100, "value": 110}, Decimal(100)),
        ("Checkout Started", {"revenue": 90, "value": 110}, Decimal(90)),
        ("Checkout Started", {"total": 100, "products": PRODUCTS}, Decimal(100)),
        ("Checkout Started", {"products": PRODUCTS}, Decimal("22.50")),
        ("Product Added", {"product_id": "p1", "price": 19.99, "quantity": 3}, Decimal("59.97")),
        ("Product Viewed", {"sku": "s1", "price": "19.99"}, Decimal("19.99")),
        ("Product Viewed", {"product_id": "p1"}, None),
        ("Signed Up", {}, None),
        ("Order Completed", {"revenue": "12.30"}, Decimal("12.30")),
        ("Order Completed", {"revenue": 0.1}, Decimal("0.1")),
    ],
)  # fmt: skip
def test_value_precedence(event_name: str, properties: dict[str, Any], value: Decimal) -> None:
    """By default the value is total, then revenue, then value (the order total the
    WooCommerce seeds send), whatever the event; else the items' price × quantity."""
    assert parse(msg(event=event_name, properties=properties)).value == value


@pytest.mark.parametrize(
    ("value_from", "properties", "value"),
    [
        (("revenue", "total", "value"), {"revenue": 90, "total": 100, "value": 110}, Decimal(90)),
        (("value",), {"revenue": 90, "total": 100, "value": 110}, Decimal(110)),
        (("value",), {"revenue": 90, "products": PRODUCTS}, Decimal("22.50")),
        (("revenue", "value"), {"total": 100}, None),
    ],
)  # fmt: skip
def test_value_from_picks_the_stores_property(
    value_from: tuple[str, ...], properties: dict[str, Any], value: Decimal | None
) -> None:
    """A store's value_from names the properties the value is read from, in order; the
    products' sum is the last resort, and a property it does not list is never read."""
    event = parse_message(
        msg(event="Order Completed", properties=properties),
        store="shop",
        received_at=RECEIVED,
        default_type=None,
        names=DEFAULT_NAMES,
        resolve_ip=FakeResolver(),
        value_from=value_from,
    )
    assert event.value == value


def test_products_become_items() -> None:
    """Each product becomes an item, its id from product_id, sku or id in that order."""
    event = parse(
        msg(
            properties={
                "products": [
                    {"product_id": 507, "sku": "S-1", "name": "Tee", "price": 9.5, "quantity": "2", "brand": "B", "category": "Tops", "variant": "red"},
                    {"sku": "S-2", "id": "I-2", "quantity": 1.0},
                    {"id": "I-3", "product_id": ""},
                ]
            }
        )
    )  # fmt: skip
    assert event.items == (
        Item(
            id="507",
            name="Tee",
            price=Decimal("9.5"),
            quantity=2,
            brand="B",
            category="Tops",
            variant="red",
            sku="S-1",
        ),
        Item(id="S-2", quantity=1, sku="S-2"),
        Item(id="I-3"),
    )


def test_single_product_event_has_one_item() -> None:
    """A Product Viewed without products makes one item of the top-level properties."""
    event = parse(
        msg(
            event="Product Viewed",
            properties={
                "product_id": "p9",
                "sku": "S9",
                "name": "Mug",
                "price": 7,
                "currency": "eur",
            },
        )
    )
    assert event.items == (Item(id="p9", name="Mug", price=Decimal(7), sku="S9"),)
    assert (event.currency, event.value) == ("EUR", Decimal(7))


def test_order_fields() -> None:
    """order_id, currency, tax, shipping, discount and coupon come from properties."""
    event = parse(
        msg(
            event="Order Completed",
            properties={
                "orderId": 1001,
                "currency": "usd",
                "tax": "1.10",
                "shipping": 4,
                "discount": 2.5,
                "coupon": "SPRING",
            },
        )
    )
    assert (event.order_id, event.currency, event.tax, event.shipping) == (
        "1001",
        "USD",
        Decimal("1.10"),
        Decimal(4),
    )
    assert (event.discount, event.coupon, event.items, event.value) == (
        Decimal("2.5"),
        "SPRING",
        (),
        None,
    )


def test_order_id_prefers_snake_case() -> None:
    """order_id wins over orderId when both are sent."""
    assert parse(msg(properties={"order_id": "A", "orderId": "B"})).order_id == "A"


# --- invalid fields and their paths --------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "path", "expected"),
    [
        (msg(properties={"products": [{}, {"price": True}]}), "batch[3]", "batch[3].properties.products[1].price: expected a number, got boolean"),
        (msg(properties={"products": [{}, {"price": "12,50"}]}), "", "properties.products[1].price: expected a number, got '12,50'"),
        (msg(properties={"products": [{"quantity": -1}]}), "", "properties.products[0].quantity: expected an integer from 0 to 1,000,000,000, got -1"),
        (msg(properties={"products": [{"quantity": 1.5}]}), "", "properties.products[0].quantity: expected an integer from 0 to 1,000,000,000, got 1.5"),
        (msg(properties={"products": [{"name": ["a"]}]}), "", "properties.products[0].name: expected a string, got array"),
        (msg(properties={"products": ["p1"]}), "batch[0]", "batch[0].properties.products[0]: expected an object, got string"),
        (msg(properties={"products": {"p1": 1}}), "", "properties.products: expected an array, got object"),
        (msg(properties={"revenue": "NaN", "event": None}, event="Order Completed"), "", "properties.revenue: expected a number, got 'NaN'"),
        (msg(properties={"value": [1]}), "", "properties.value: expected a number, got array"),
        (msg(properties={"currency": "EURO"}), "", "properties.currency: expected a three-letter currency code, got 'EURO'"),
        (msg(properties={"currency": 978}), "", "properties.currency: expected a three-letter currency code, got number"),
        (msg(properties={"tax": {}}), "", "properties.tax: expected a number, got object"),
        (msg(properties={"coupon": 5}), "", "properties.coupon: expected a string, got number"),
        (msg(properties={"order_id": ["A"]}), "", "properties.order_id: expected a string or an integer, got array"),
        (msg(properties=[1]), "batch[1]", "batch[1].properties: expected an object, got array"),
        (msg(context="ctx"), "", "context: expected an object, got string"),
        (msg(context={"page": {"url": ["https://x"]}}), "", "context.page.url: expected a string, got array"),
        (msg(context={"userAgent": 5}), "batch[2]", "batch[2].context.userAgent: expected a string, got number"),
        (msg(context={"traits": {"email": ["a@x", 5]}}), "", "context.traits.email[1]: expected a string, got number"),
        (msg(context={"traits": {"address": {"city": 1}}}), "", "context.traits.address.city: expected a string, got number"),
        (msg(type="identify", event=None, traits={"firstName": False}), "", "traits.firstName: expected a string, got boolean"),
        (msg(context={"fbp": ["x"]}), "", "context.fbp: expected a string or an integer, got array"),
        (msg(context={"click_ids": {"gclid": {}}}), "", "context.click_ids.gclid: expected a string or an integer, got object"),
        (msg(context={"cookies": {"_fbp": 1}}), "", "context.cookies._fbp: expected a string, got number"),
        (msg(integrations={"Google Analytics 4": {"clientId": []}}), "", 'integrations["Google Analytics 4"].clientId: expected a string or an integer, got array'),
        (msg(context={"locale": "x" * 8193}), "", "context.locale: longer than 8192 characters"),
        (msg(timestamp="never"), "batch[7]", "batch[7].timestamp: not an ISO 8601 time: 'never'"),
    ],
)  # fmt: skip
def test_invalid_fields_name_their_path(m: dict[str, Any], path: str, expected: str) -> None:
    """A field of the wrong type or shape is refused with its exact path, batch prefix included."""
    assert error(m, path=path) == expected


def test_long_strings_up_to_the_cap_are_kept() -> None:
    """A string of exactly 8192 characters is accepted."""
    assert parse(msg(context={"locale": "x" * 8192})).locale == "x" * 8192


# --- consent -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "consent"),
    [
        ({}, UNKNOWN_CONSENT),
        ({"consent": {"ad_user_data": "GRANTED", "ad_personalization": "denied", "analytics": "granted"}}, Consent("granted", "denied", "granted")),
        ({"consent": {"ad_user_data": True, "ad_personalization": False}}, Consent("granted", "denied", "unknown")),
        ({"consent": {"analytics_storage": "denied"}}, Consent(analytics="denied")),
        ({"consent": {"analytics_storage": "denied", "analytics": "granted"}}, Consent(analytics="granted")),
        ({"consent": {"ad_user_data": "unknown"}}, UNKNOWN_CONSENT),
        ({"consent": {"categoryPreferences": {"Advertising": True, "Analytics": False, "Functional": True}}}, Consent("granted", "granted", "denied", categories={"Advertising": "granted", "Analytics": "denied", "Functional": "granted"})),
        ({"consent": {"categoryPreferences": {"advertising": False}}}, Consent("denied", "denied", "unknown", categories={"advertising": "denied"})),
        ({"consent": {"categoryPreferences": {"Advertising": True}, "ad_personalization": "denied"}}, Consent("granted", "denied", "unknown", categories={"Advertising": "granted"})),
        ({"consent": {"tcf": "CPXxRfAPXxRfA"}}, Consent(tcf_string="CPXxRfAPXxRfA")),
        ({"consent": {"tcfString": "CPtcf"}, "gdpr_consent": "CPgdpr"}, Consent(tcf_string="CPtcf")),
        ({"gdpr_consent": "CPgdpr"}, Consent(tcf_string="CPgdpr")),
    ],
)  # fmt: skip
def test_consent(context: dict[str, Any], consent: Consent) -> None:
    """Google-style keys, Segment categoryPreferences and TCF strings become the event's consent."""
    assert parse(msg(context=context)).consent == consent


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({"ad_user_data": "yes"}, "context.consent.ad_user_data: expected one of granted, denied, unknown, true or false, got 'yes'"),
        ({"analytics": 1}, "context.consent.analytics: expected one of granted, denied, unknown, true or false, got 1"),
        ({"categoryPreferences": {"Advertising": "maybe"}}, "context.consent.categoryPreferences.Advertising: expected one of granted, denied, unknown, true or false, got 'maybe'"),
        ({"categoryPreferences": ["Advertising"]}, "context.consent.categoryPreferences: expected an object, got array"),
        ({"tcf": 1}, "context.consent.tcf: expected a string, got number"),
    ],
)  # fmt: skip
def test_bad_consent(consent: dict[str, Any], expected: str) -> None:
    """A consent value that is not granted/denied/unknown or a boolean is refused with the valid ones."""
    assert error(msg(context={"consent": consent})) == expected


# --- properties ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{}, {"properties": {}}, {"properties": None}],
)
def test_absent_properties_are_an_empty_dict(fields: dict[str, Any]) -> None:
    """A message without properties has an empty properties mapping."""
    assert parse(msg(**fields)).properties == {}


def test_identify_keeps_properties_as_sent() -> None:
    """identify keeps the message's properties untouched; its traits go to identity fields only."""
    event = parse(msg(type="identify", event=None, traits={"email": "a@x.example", "plan": "pro"}))
    assert (event.properties, event.emails) == ({}, ("a@x.example",))
