"""Sender names onto canonical names: the Segment table, canonical passthrough and overrides."""

from __future__ import annotations

import pytest

from router.event import CANONICAL_NAMES, IDENTITY_CALLS
from router.ingest.names import DEFAULT_NAMES, SEGMENT_NAMES, NameMap

SEGMENT_TABLE = [
    ("Order Completed", "purchase"),
    ("Product Viewed", "view_item"),
    ("Product Added", "add_to_cart"),
    ("Checkout Started", "begin_checkout"),
    ("Payment Info Entered", "add_payment_info"),
    ("Order Refunded", "refund"),
    ("Products Searched", "search"),
    ("Signed Up", "sign_up"),
    ("Lead Generated", "generate_lead"),
    ("Lead Created", "generate_lead"),
    ("Lead Submitted", "generate_lead"),
    ("Generate Lead", "generate_lead"),
]


@pytest.mark.parametrize(("sender", "canonical"), SEGMENT_TABLE)
def test_segment_ecommerce_names(sender: str, canonical: str) -> None:
    """Each Segment e-commerce v2 track name maps onto its canonical name."""
    assert DEFAULT_NAMES.canonical("track", sender) == canonical


def test_table_is_exactly_the_documented_one() -> None:
    """The table holds the documented names and nothing else, all onto canonical names."""
    assert dict(SEGMENT_NAMES) == dict(SEGMENT_TABLE)
    assert set(SEGMENT_NAMES.values()) <= CANONICAL_NAMES


@pytest.mark.parametrize("canonical", sorted(CANONICAL_NAMES - IDENTITY_CALLS))
def test_canonical_names_pass_through(canonical: str) -> None:
    """A track event that already uses a canonical (non-identity) name keeps it."""
    assert DEFAULT_NAMES.canonical("track", canonical) == canonical


@pytest.mark.parametrize(
    ("sender", "canonical"),
    [
        ("order completed", "purchase"),
        ("ORDER COMPLETED", "purchase"),
        ("product VIEWED", "view_item"),
        ("Purchase", "purchase"),
        ("ADD_TO_CART", "add_to_cart"),
    ],
)
def test_names_match_in_any_case(sender: str, canonical: str) -> None:
    """A name that matches only when case is ignored still maps."""
    assert DEFAULT_NAMES.canonical("track", sender) == canonical


@pytest.mark.parametrize(
    ("source_type", "sender", "canonical"),
    [
        ("page", "Home", "page_view"),
        ("page", "Order Completed", "page_view"),
        ("screen", "Cart", "page_view"),
        ("identify", "identify", "identify"),
        ("group", "group", "group"),
        ("alias", "alias", "alias"),
        ("track", "Cart Viewed", "custom"),
        ("track", "Completed Order", "custom"),
    ],
)
def test_types_and_unknown_names(source_type: str, sender: str, canonical: str) -> None:
    """Page and screen are page views; identify, group and alias keep their names; else custom."""
    assert DEFAULT_NAMES.canonical(source_type, sender) == canonical


OVERRIDES = {
    "Demo Booked": "generate_lead",
    "order completed": "custom",
    "Subscription Started": "purchase",
    "SUBSCRIPTION STARTED": "sign_up",
}


@pytest.mark.parametrize(
    ("sender", "canonical"),
    [
        ("Demo Booked", "generate_lead"),
        ("demo booked", "generate_lead"),
        ("Order Completed", "custom"),
        ("ORDER COMPLETED", "custom"),
        ("Subscription Started", "purchase"),
        ("SUBSCRIPTION STARTED", "sign_up"),
        ("Product Added", "add_to_cart"),
        ("purchase", "purchase"),
        ("Something Else", "custom"),
    ],
)
def test_overrides_win_over_the_table(sender: str, canonical: str) -> None:
    """A store override wins over the table, exact spelling first, then in any case."""
    names = NameMap(OVERRIDES)
    assert names.canonical("track", sender) == canonical


def test_overrides_do_not_rename_page_views() -> None:
    """Overrides apply to track names only; a page named like an override stays a page view."""
    assert NameMap({"Pricing": "generate_lead"}).canonical("page", "Pricing") == "page_view"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Demo Booked": "lead"}, "event_names.Demo Booked: 'lead' is not one of"),
        ({"": "purchase"}, "event_names: an empty sender name"),
    ],
)
def test_bad_overrides_are_refused(overrides: dict[str, str], message: str) -> None:
    """An override onto a non-canonical name, or of an empty name, is refused."""
    with pytest.raises(ValueError, match=message):
        NameMap(overrides)


@pytest.mark.parametrize("sender", ["alias", "Group", "identify"])
def test_a_track_event_is_never_an_identity_call(sender: str) -> None:
    """A track event named like identify, alias or group is custom: only those calls update
    identity, and a custom event is still a conversion its sender meant."""
    assert DEFAULT_NAMES.canonical("track", sender) == "custom"


@pytest.mark.parametrize("target", ["identify", "alias", "group"])
def test_an_override_onto_an_identity_call_is_refused(target: str) -> None:
    """A store cannot turn a track event into identify, alias or group."""
    with pytest.raises(ValueError, match=f"event_names.Signed In: '{target}' is not one of"):
        NameMap({"Signed In": target})
