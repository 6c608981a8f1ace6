"""Spotify CAPI mapping rules that the golden files do not show: IPs, names, consent, details."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from destinations.spotify_capi import SpotifyCapiDestination
from destinations.spotify_capi.mapping import event_time
from router.destination import MappingError
from router.event import Consent, Item
from router.testing.events import make_event

Factory = Callable[..., SpotifyCapiDestination]


@pytest.mark.parametrize("ip_class", ["private", "loopback", "cdn", "cgnat", "own_server"])
def test_non_public_ip_is_withheld_and_counted(make_destination: Factory, ip_class: str) -> None:
    """An IP that is not the customer's public one is left out and counted by its class."""
    destination = make_destination()
    payload = destination.map(make_event(client_ip="10.0.0.7", client_ip_class=ip_class))
    assert "ip_address" not in payload["user_data"]
    assert destination.ip_withheld == {ip_class: 1}


def test_missing_ip_is_counted_as_missing(make_destination: Factory) -> None:
    """An event without any IP is counted under ``missing``."""
    destination = make_destination()
    destination.map(make_event(client_ip=None, client_ip_class="missing"))
    assert destination.ip_withheld == {"missing": 1}


def test_public_ip_is_sent_and_not_counted(make_destination: Factory) -> None:
    """A public customer IP goes out as plaintext ``ip_address``."""
    destination = make_destination()
    assert destination.map(make_event())["user_data"]["ip_address"] == "81.2.69.142"
    assert sum(destination.ip_withheld.values()) == 0


def test_unmapped_custom_event_is_a_mapping_error(make_destination: Factory) -> None:
    """A custom event with no configured slot cannot be sent."""
    event = make_event(name="custom", source_name="Wishlist Shared")
    with pytest.raises(MappingError) as caught:
        make_destination().map(event)
    assert caught.value.reason == "unmapped_custom_event"


def test_unsupported_event_is_a_mapping_error(make_destination: Factory) -> None:
    """A canonical event Spotify has no name for (refund) is refused."""
    with pytest.raises(MappingError) as caught:
        make_destination().map(make_event(name="refund"))
    assert caught.value.reason == "unsupported_event"
    assert "refund" not in (SpotifyCapiDestination.supported_events or ())


def test_event_without_any_identifier_is_a_mapping_error(make_destination: Factory) -> None:
    """Spotify needs at least one identifier; an event with none is refused before sending."""
    event = make_event(client_ip_class="private", spotify_device_id=None, emails=(), phones=("  ",))
    with pytest.raises(MappingError) as caught:
        make_destination().map(event)
    assert caught.value.reason == "no_user_identifier"


@pytest.mark.parametrize(
    ("consent", "opt_out"),
    [
        (Consent(ad_user_data="granted", ad_personalization="granted"), False),
        (Consent(), False),
        (Consent(ad_user_data="granted", ad_personalization="denied"), True),
        (Consent(ad_user_data="denied", ad_personalization="granted"), True),
    ],
)
def test_opt_out_targeting_follows_denied_consent(
    make_destination: Factory, consent: Consent, opt_out: bool
) -> None:
    """opt_out_targeting is true when ad_user_data or ad_personalization is denied."""
    payload = make_destination().map(make_event(consent=consent))
    assert payload["opt_out_targeting"] is opt_out


@pytest.mark.parametrize(
    ("source", "expected"),
    [("web", "WEB"), ("app", "APP"), ("offline", "OFFLINE"), ("phone_call", "OFFLINE")],
)
def test_action_source_maps_to_spotify_enum(
    make_destination: Factory, source: str, expected: str
) -> None:
    """web, app, offline and phone_call map onto WEB, APP and OFFLINE."""
    assert make_destination().map(make_event(action_source=source))["action_source"] == expected


@pytest.mark.parametrize("source", ["chat", "email", "system_generated", "other"])
def test_action_source_without_spotify_word_is_left_out(
    make_destination: Factory, source: str
) -> None:
    """Sources Spotify has no value for omit the optional field instead of claiming WEB."""
    assert "action_source" not in make_destination().map(make_event(action_source=source))


@pytest.mark.parametrize(
    ("items", "properties", "expected"),
    [
        ((Item(name="Mug", category="Kitchen"),), {}, None),
        ((Item(name="Mug", category="638"),), {}, "638"),
        ((), {"google_product_category": 2271}, "2271"),
        ((), {"content_category": "Apparel & Accessories"}, None),
    ],
)
def test_content_category_only_when_numeric_taxonomy_id(
    make_destination: Factory, items: tuple[Item, ...], properties: dict[str, Any], expected: Any
) -> None:
    """content_category is sent only as a numeric Google Product Taxonomy id, never free text."""
    event = make_event(items=items, properties=properties)
    details = make_destination().map(event)["event_details"]
    assert details.get("content_category") == expected


def test_amount_needs_a_currency(make_destination: Factory) -> None:
    """A value without a currency sends neither amount nor currency."""
    payload = make_destination().map(make_event(value=Decimal("10"), currency=None, items=()))
    assert "event_details" not in payload


def test_device_id_can_be_hashed(make_destination: Factory) -> None:
    """hash_device_id sends the SHA-256 of the device id instead of the raw value."""
    payload = make_destination(hash_device_id=True).map(make_event(spotify_device_id="dev-1"))
    assert payload["user_data"]["device_id"] == hashlib.sha256(b"dev-1").hexdigest()


def test_event_time_is_utc_with_milliseconds() -> None:
    """Times are RFC 3339 UTC with exactly three fractional digits and a Z."""
    moment = datetime(2026, 1, 23, 12, 34, 56, 7890, tzinfo=UTC)
    assert event_time(moment) == "2026-01-23T12:34:56.007Z"
