"""GA4 mapping rules beyond the golden files: identity fallbacks, names, limits, consent."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from destinations.ga4 import Ga4Config, Ga4Destination
from router import privacy
from router.destination import MappingError
from router.event import Consent, Item
from router.http import HttpClient
from router.secret import Secret
from router.testing.events import make_event


def mapped(app: bool = False, **overrides: Any) -> dict[str, Any]:
    stream = {"firebase_app_id": "1:123:android:abc"} if app else {"measurement_id": "G-T1"}
    config = Ga4Config(api_secret=Secret("s"), **stream)
    return Ga4Destination(config, HttpClient.__new__(HttpClient)).map(make_event(**overrides))


def reason(**overrides: Any) -> str:
    with pytest.raises(MappingError) as caught:
        mapped(**overrides)
    return caught.value.reason


def test_cookie_prefix_is_removed_from_the_client_id() -> None:
    """A raw _ga cookie value GA1.1.<id>.<time> becomes <id>.<time>."""
    assert mapped(ga_client_id="GA1.1.123456789.1763650000")["client_id"] == "123456789.1763650000"


def test_missing_client_id_falls_back_to_a_stable_derived_one() -> None:
    """Without ga_client_id the ID is derived from anonymous_id: same input, same ID."""
    first = mapped(ga_client_id=None, anonymous_id="anon-1")["client_id"]
    assert re.fullmatch(r"\d{10}\.\d{10}", first)
    assert mapped(ga_client_id=None, anonymous_id="anon-1")["client_id"] == first
    assert mapped(ga_client_id=None, anonymous_id="anon-2")["client_id"] != first


def test_an_event_without_identity_still_maps() -> None:
    """An event stripped of user data (consent) gets an ID from its event_id and no user_data."""
    event = privacy.without_user_data(make_event(event_id="e-1"))
    config = Ga4Config(api_secret=Secret("s"), measurement_id="G-T1")
    body = Ga4Destination(config, HttpClient.__new__(HttpClient)).map(event)
    assert re.fullmatch(r"\d{10}\.\d{10}", body["client_id"])
    assert "user_data" not in body
    assert "user_id" not in body


def test_app_streams_send_app_instance_id() -> None:
    """With firebase_app_id the request carries app_instance_id instead of client_id."""
    body = mapped(app=True, other_ids={"app_instance_id": "a" * 32})
    assert body["app_instance_id"] == "a" * 32
    assert "client_id" not in body


def test_unknown_consent_is_left_out() -> None:
    """Only stated consent is sent, upper case; unknown signals are omitted."""
    body = mapped(consent=Consent(ad_user_data="denied"))
    assert body["consent"] == {"ad_user_data": "DENIED"}
    assert "consent" not in mapped(consent=Consent())


def test_timestamp_is_exact_microseconds() -> None:
    """timestamp_micros is an integer with the event's microseconds."""
    body = mapped()
    assert body["timestamp_micros"] == 1795185005123000
    assert body["events"][0]["timestamp_micros"] == body["timestamp_micros"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"order_id": None}, "missing_transaction_id"),
        ({"name": "refund", "order_id": None}, "missing_transaction_id"),
        ({"currency": None}, "missing_currency"),
        ({"currency": "euro"}, "invalid_currency"),
        ({"items": (Item(price=Decimal(1)),)}, "invalid_item"),
        ({"items": tuple(Item(id=str(n)) for n in range(201))}, "too_many_items"),
        ({"coupon": "x" * 101}, "param_too_long"),
        ({"items": (Item(id="1", name="n" * 101),)}, "param_too_long"),
        ({"name": "identify"}, "unsupported_event"),
        ({"name": "custom", "source_name": "Café Visit"}, "invalid_name"),
        ({"name": "custom", "source_name": "9 Lives"}, "invalid_name"),
        ({"name": "custom", "source_name": "x" * 41}, "invalid_name"),
        ({"name": "custom", "source_name": "Session Start"}, "reserved_name"),
        ({"name": "custom", "source_name": "ga_thing"}, "reserved_name"),
        ({"name": "custom", "source_name": "Firebase Thing"}, "reserved_name"),
    ],
)
def test_what_ga4_cannot_take_is_a_mapping_error(overrides: dict[str, Any], expected: str) -> None:
    """Events breaking GA4's rules fail at mapping with a reason, never truncated or renamed."""
    assert reason(**overrides) == expected


def test_long_page_parameters_have_their_own_limits() -> None:
    """page_location may be 1,000 characters and page_referrer 420, not one more."""
    url = "https://shop.example/" + "a" * (1000 - 21)
    body = mapped(name="page_view", page_url=url, referrer="r" * 420)
    assert body["events"][0]["params"]["page_location"] == url
    assert reason(name="page_view", page_url=url + "a") == "param_too_long"
    assert reason(name="page_view", referrer="r" * 421) == "param_too_long"


def test_custom_names_become_snake_case() -> None:
    """A sender name with spaces or dashes becomes lower snake_case when GA4 can take it."""
    assert mapped(name="custom", source_name="Gift-Card Redeemed")["events"][0]["name"] == (
        "gift_card_redeemed"
    )


def test_engagement_time_comes_from_properties_when_positive() -> None:
    """A positive engagement_time_msec property is used; anything else gives 1."""
    params = mapped(properties={"engagement_time_msec": 4200})["events"][0]["params"]
    assert params["engagement_time_msec"] == 4200
    params = mapped(properties={"engagement_time_msec": 0})["events"][0]["params"]
    assert params["engagement_time_msec"] == 1


def test_user_data_uses_googles_normalisation() -> None:
    """Gmail dots removed, phone in E.164, pre-hashed values passed through."""
    pre = "a" * 64
    body = mapped(
        emails=("J.Doe@GMail.com", pre), phones=("0044 20 7946 0958",), street=" 1 High St "
    )
    user_data = body["user_data"]
    assert user_data["sha256_email_address"] == [privacy.sha256_hex("jdoe@gmail.com"), pre]
    assert user_data["sha256_phone_number"] == [privacy.sha256_hex("+442079460958")]
    assert user_data["address"][0]["sha256_street"] == privacy.sha256_hex("1 high st")
