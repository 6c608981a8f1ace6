"""Consent read from every dialect: Google keys, Segment categories, OneTrust, RudderStack, TCF."""
# ruff: noqa: E501  (case tables read best one case a line)

from __future__ import annotations

from typing import Any

import pytest

from router.event import Consent
from router.fields import InvalidEvent
from router.identity.consent import ConsentCategories, read_consent

#: An IAB example string: purposes 3 to 9 consented, 1, 2, 10 and 11 not.
TCF_3_TO_9 = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
ONETRUST_GROUPS = {"C0001": True, "C0002": True, "C0003": True, "C0004": False, "C0005": True}


def signals(consent: Consent) -> tuple[str, str, str]:
    return (consent.ad_user_data, consent.ad_personalization, consent.analytics)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"consent": {"categoryPreferences": ONETRUST_GROUPS}}, ("denied", "denied", "granted")),
        ({"consent": {"categoryPreferences": {"C0004": True, "C0002": False}}}, ("granted", "granted", "denied")),
        ({"consent": {"categoryPreferences": {"Targeting Cookies": False}}}, ("denied", "denied", "unknown")),
        ({"consent": {"categoryPreferences": {"targeting cookies": True, "PERFORMANCE COOKIES": True}}}, ("granted", "granted", "granted")),
        ({"consent": {"categoryPreferences": {"C0003": True}}}, ("unknown", "unknown", "unknown")),
        ({"consentManagement": {"provider": "oneTrust", "allowedConsentIds": ["C0001", "C0002"], "deniedConsentIds": ["C0004"]}}, ("denied", "denied", "granted")),
        ({"consentManagement": {"provider": "oneTrust", "allowedConsentIds": ["C0001", "C0004"], "deniedConsentIds": []}}, ("granted", "granted", "unknown")),
        ({"consent": {"categoryPreferences": {"C0004": True}}, "consentManagement": {"deniedConsentIds": ["C0004"]}}, ("denied", "denied", "unknown")),
        ({"consent": {"categoryPreferences": {"C0004": False}, "ad_user_data": "granted"}}, ("granted", "denied", "unknown")),
        ({"gdpr_consent": TCF_3_TO_9}, ("denied", "granted", "unknown")),
        ({"consent": {"tcf": TCF_3_TO_9, "categoryPreferences": {"C0004": True}}}, ("denied", "granted", "unknown")),
    ],
)  # fmt: skip
def test_every_dialect_means_the_signals_it_states(
    context: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    """OneTrust groups, named categories, RudderStack ids and TCF purposes fill the signals;
    a denial anywhere wins and a signal the sender stated itself wins over its categories."""
    assert signals(read_consent(context)) == expected


def test_the_categories_stated_are_kept_as_sent() -> None:
    """Every stated category is kept on the event under the name it was sent with."""
    consent = read_consent(
        {
            "consent": {"categoryPreferences": {"C0004": False, "Functional": True, "x": None}},
            "consentManagement": {"allowedConsentIds": ["C0001", 7], "deniedConsentIds": ["C0002"]},
        }
    )
    assert consent.categories == {
        "C0004": "denied",
        "Functional": "granted",
        "C0001": "granted",
        "7": "granted",
        "C0002": "denied",
    }


def test_tcf_purposes_become_categories() -> None:
    """A TC string's purposes are kept as ``tcf_purpose_<id>`` categories, with the string."""
    consent = read_consent({"gdpr_consent": TCF_3_TO_9})
    assert consent.tcf_string == TCF_3_TO_9
    assert consent.categories["tcf_purpose_1"] == "denied"
    assert consent.categories["tcf_purpose_7"] == "granted"
    assert len(consent.categories) == 11


def test_an_unreadable_tcf_string_is_kept_and_states_nothing() -> None:
    """A TC string Tagless cannot decode is stored as sent and grants or denies nothing."""
    consent = read_consent({"gdpr_consent": "CPgdpr"})
    assert consent == Consent(tcf_string="CPgdpr")


def test_a_store_map_says_which_categories_mean_each_signal() -> None:
    """The store's map replaces the defaults of the signals it names and keeps the others."""
    meaning = ConsentCategories(ad_user_data=("Marketing",), analytics=("stats",))
    context = {
        "consent": {"categoryPreferences": {"marketing": False, "C0004": True, "stats": True}}
    }
    assert signals(read_consent(context, meaning)) == ("denied", "granted", "granted")


@pytest.mark.parametrize(
    ("context", "error"),
    [
        ({"consentManagement": ["C0001"]}, "context.consentManagement: expected an object, got array"),
        ({"consentManagement": {"allowedConsentIds": "C0001"}}, "context.consentManagement.allowedConsentIds: expected an array of consent ids, got string"),
        ({"consentManagement": {"deniedConsentIds": [{"id": 1}]}}, "context.consentManagement.deniedConsentIds[0]: expected a string, got object"),
        ({"consentManagement": {"provider": 3}}, "context.consentManagement.provider: expected a string, got number"),
        ({"consent": {"categoryPreferences": {"C0004": "maybe"}}}, "context.consent.categoryPreferences.C0004: expected one of granted, denied, unknown, true or false, got 'maybe'"),
    ],
)  # fmt: skip
def test_a_malformed_consent_is_refused_with_its_path(context: dict[str, Any], error: str) -> None:
    """Consent fields of the wrong type are refused, naming the field and what is valid."""
    with pytest.raises(InvalidEvent) as caught:
        read_consent(context)
    assert str(caught.value) == error


def test_category_names_must_be_non_empty() -> None:
    """A store map with an empty category name is a config error."""
    with pytest.raises(ValueError, match="ad_user_data: a category is a non-empty name"):
        ConsentCategories(ad_user_data=("C0004", " "))
