"""Google Ads mapping rules beyond the golden files: click ids, identifiers, consent, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from destinations.google_ads import mapping
from router import privacy
from router.destination import MappingError
from router.event import Consent, Event
from router.testing.events import make_event

ACTIONS = {"purchase": "987654321", "generate_lead": "987654322"}
HEX64 = re.compile(r"[0-9a-f]{64}")


def dm(**overrides: Any) -> dict[str, Any]:
    return mapping.data_manager_payload(make_event(**overrides), ACTIONS)["event"]


def click(**overrides: Any) -> dict[str, Any]:
    return mapping.click_conversion(make_event(**overrides), "1234567890", ACTIONS)


def refusal(build: Any, event: Event) -> MappingError:
    with pytest.raises(MappingError) as caught:
        build(event)
    return caught.value


BOTH = [
    pytest.param(lambda e: mapping.data_manager_payload(e, ACTIONS), id="data_manager"),
    pytest.param(lambda e: mapping.click_conversion(e, "1234567890", ACTIONS), id="click_upload"),
]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"gclid": "G", "gbraid": "B", "wbraid": "W"}, {"gclid": "G"}),
        ({"gbraid": "B", "wbraid": "W"}, {"gbraid": "B"}),
        ({"wbraid": "W"}, {"wbraid": "W"}),
        ({"gclid": "  ", "wbraid": "W"}, {"wbraid": "W"}),
    ],
)
def test_exactly_one_click_id_is_sent_gclid_first(
    given: dict[str, str], sent: dict[str, str]
) -> None:
    """gclid wins over gbraid over wbraid; never two in one conversion, in either mode."""
    assert dm(**given)["adIdentifiers"] == sent
    conversion = click(**given)
    assert {k: conversion[k] for k in ("gclid", "gbraid", "wbraid") if k in conversion} == sent


@pytest.mark.parametrize("build", BOTH)
def test_an_event_with_neither_click_id_nor_identity_is_refused(build: Any) -> None:
    """No click id, no email, no phone: a MappingError saying what is missing."""
    event = make_event(emails=(), phones=(), first_name=None)
    error = refusal(build, event)
    assert error.reason == "no_identifier"
    assert "gclid" in str(error) and "email or phone" in str(error)


@pytest.mark.parametrize("build", BOTH)
def test_denied_ad_user_data_sends_no_user_data(build: Any) -> None:
    """ad_user_data denied: the click id and DENIED consent go, hashed identity does not."""
    event = make_event(
        gclid="G", consent=Consent(ad_user_data="denied", ad_personalization="denied")
    )
    payload = build(event)
    body = payload.get("event", payload)
    assert "userData" not in body and "userIdentifiers" not in body
    assert body["consent"]["adUserData"] in ("CONSENT_DENIED", "DENIED")


@pytest.mark.parametrize("build", BOTH)
def test_denied_ad_user_data_without_click_id_is_refused_saying_why(build: Any) -> None:
    """Denied consent and no click id: nothing left to match on, and the message says consent."""
    event = make_event(consent=Consent(ad_user_data="denied"))
    error = refusal(build, event)
    assert error.reason == "no_identifier" and "ad_user_data is denied" in str(error)


def test_an_event_stripped_by_the_consent_policy_is_refused_not_sent_empty() -> None:
    """The consent policy's without_user_data drops click ids too: refused with a reason."""
    event = privacy.without_user_data(make_event(gclid="G"))
    assert (
        refusal(lambda e: mapping.data_manager_payload(e, ACTIONS), event).reason == "no_identifier"
    )


def test_unmapped_event_names_are_refused_naming_the_configured_ones() -> None:
    """Only events in conversion_actions map (routing keeps the others away)."""
    error = refusal(
        lambda e: mapping.data_manager_payload(e, ACTIONS), make_event(name="add_to_cart")
    )
    assert error.reason == "no_conversion_action"
    assert "generate_lead, purchase" in str(error)


def test_data_manager_identifiers_hold_one_value_each_hashed_hex() -> None:
    """Each userIdentifier has exactly one of emailAddress, phoneNumber, address."""
    body = dm(
        emails=("a@example.com", "b@example.com"),
        phones=("+44 20 7946 0958",),
        postal_code="SW1A 1AA",
    )
    identifiers = body["userData"]["userIdentifiers"]
    assert [list(i) for i in identifiers] == [
        ["emailAddress"],
        ["emailAddress"],
        ["phoneNumber"],
        ["address"],
    ]
    assert all(HEX64.fullmatch(v) for i in identifiers[:3] for v in i.values())
    address = identifiers[3]["address"]
    assert HEX64.fullmatch(address["givenName"]) and HEX64.fullmatch(address["familyName"])
    assert (address["regionCode"], address["postalCode"]) == ("GB", "SW1A 1AA")


def test_a_partial_address_is_not_sent() -> None:
    """Google needs all four address parts; without a postal code there is no address."""
    identifiers = dm(postal_code=None)["userData"]["userIdentifiers"]
    assert all("address" not in i for i in identifiers)


@pytest.mark.parametrize(
    ("build", "limit"),
    [(dm, mapping.MAX_DATA_MANAGER_IDENTIFIERS), (click, mapping.MAX_CLICK_IDENTIFIERS)],
)
def test_identifiers_are_capped_at_googles_limit(build: Any, limit: int) -> None:
    """At most 10 identifiers per Data Manager event, 5 per click conversion."""
    emails = tuple(f"buyer{i}@example.com" for i in range(12))
    payload = build(emails=emails)
    identifiers = payload.get("userData", {}).get("userIdentifiers") or payload["userIdentifiers"]
    assert len(identifiers) == limit


def test_click_identifiers_are_hashed_email_and_phone_only() -> None:
    """Click conversions take hashedEmail and hashedPhoneNumber, marked first party."""
    identifiers = click()["userIdentifiers"]
    assert [sorted(i) for i in identifiers] == [
        ["hashedEmail", "userIdentifierSource"],
        ["hashedPhoneNumber", "userIdentifierSource"],
    ]
    assert {i["userIdentifierSource"] for i in identifiers} == {"FIRST_PARTY"}


def test_event_timestamp_is_rfc3339_utc() -> None:
    """eventTimestamp: RFC 3339 in UTC with microseconds, whatever the input zone."""
    moment = datetime(2026, 11, 20, 15, 30, 5, 123000, tzinfo=timezone(timedelta(hours=1)))
    assert dm(occurred_at=moment)["eventTimestamp"] == "2026-11-20T14:30:05.123000Z"


def test_conversion_date_time_is_googles_format_with_offset() -> None:
    """conversionDateTime: yyyy-mm-dd hh:mm:ss+00:00, whole seconds (a stable dedup key)."""
    moment = datetime(2026, 11, 20, 14, 30, 5, 999999, tzinfo=UTC)
    assert click(occurred_at=moment)["conversionDateTime"] == "2026-11-20 14:30:05+00:00"


@pytest.mark.parametrize(("order_id", "key"), [("WC-1", "WC-1"), (None, "evt-x")])
def test_dedup_key_is_the_order_id_else_the_event_id(order_id: str | None, key: str) -> None:
    """transactionId (Data Manager) and orderId (click upload) are the same dedup key."""
    assert dm(order_id=order_id, event_id="evt-x")["transactionId"] == key
    assert click(order_id=order_id, event_id="evt-x")["orderId"] == key


def test_consent_spelling_per_api() -> None:
    """Data Manager spells CONSENT_GRANTED and takes both signals; click upload only adUserData."""
    consent = Consent(ad_user_data="granted", ad_personalization="denied")
    assert dm(consent=consent)["consent"] == {
        "adUserData": "CONSENT_GRANTED",
        "adPersonalization": "CONSENT_DENIED",
    }
    assert click(consent=consent)["consent"] == {"adUserData": "GRANTED"}
    assert "consent" not in dm(consent=Consent())


@pytest.mark.parametrize(
    ("source", "event_source", "environment"),
    [
        ("web", "WEB", "WEB"),
        ("app", "APP", "APP"),
        ("offline", "IN_STORE", None),
        ("chat", "OTHER", None),
    ],
)
def test_action_source_becomes_event_source_and_environment(
    source: str, event_source: str, environment: str | None
) -> None:
    """eventSource (Data Manager) and conversionEnvironment (click upload, web/app only)."""
    assert dm(action_source=source)["eventSource"] == event_source
    assert click(action_source=source).get("conversionEnvironment") == environment


def test_value_and_currency() -> None:
    """conversionValue is a JSON number; the currency an upper-case ISO 4217 code."""
    body = dm(currency="eur")
    assert (body["conversionValue"], body["currency"]) == (59.9, "EUR")
    assert (
        refusal(
            lambda e: mapping.data_manager_payload(e, ACTIONS), make_event(currency="euro")
        ).reason
        == "invalid_currency"
    )
