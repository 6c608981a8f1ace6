"""Who a Google Ads conversion is about: the one click id, hashed contact data, consent."""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal

from router.sdk import (
    Event,
    Profile,
    hash_all,
    hash_name,
    hash_phone,
    hash_with,
    normalize_country,
)
from router.sdk import (
    normalize_email as profile_normalize_email,
)

#: Click ids in the order one is chosen: Google takes one per conversion and refuses a
#: conversion with both braids (``GBRAID_WBRAID_BOTH_SET``).
CLICK_IDS: Final = ("gclid", "gbraid", "wbraid")
_GMAIL: Final = ("gmail.com", "googlemail.com")
_WHITESPACE: Final = re.compile(r"\s")


def click_id(event: Event) -> tuple[str, str] | None:
    """``(key, value)`` of the one click id sent: gclid, else gbraid, else wbraid."""
    for key in CLICK_IDS:
        value = getattr(event, key)
        if value is not None and value.strip():
            return key, value.strip()
    return None


def normalize_email(value: str) -> str | None:
    """Google's form: the ``google`` profile, and for gmail.com / googlemail.com also no
    ``+suffix`` in the local part (Data Manager *Format user data*); whitespace inside an
    address makes it unusable, as in Google's own formatter."""
    text = value.strip()
    if _WHITESPACE.search(text):
        return None
    local, _, domain = text.lower().partition("@")
    if domain in _GMAIL:
        local = local.split("+", 1)[0]
        if not local.replace(".", ""):
            return None
        text = f"{local}@{domain}"
    return profile_normalize_email(text, "google")


def hash_email(value: str | None) -> str | None:
    """SHA-256 hex of Google's normal form; a value that is already a hash passes through."""
    return hash_with(_email_normaliser, value, "google")


def _email_normaliser(value: str, profile: Profile) -> str | None:
    return normalize_email(value)


def hashed_emails(event: Event) -> list[str]:
    return hash_all(event.emails, lambda value, _: hash_email(value), "google")


def hashed_phones(event: Event) -> list[str]:
    """E.164 with ``+`` then SHA-256 hex (``router.sdk``, profile ``google``)."""
    return hash_all(event.phones, hash_phone, "google")


def address(event: Event) -> dict[str, str] | None:
    """Data Manager's ``AddressInfo``: hashed given and family name, plain region code and
    postal code. Google requires all four, so a partial address is not sent."""
    given = hash_name(event.first_name, "google")
    family = hash_name(event.last_name, "google")
    country = event.country and normalize_country(event.country, "google")
    postal = _postal_code(event.postal_code)
    if not (given and family and country and postal):
        return None
    return {
        "givenName": given,
        "familyName": family,
        "regionCode": country.upper(),
        "postalCode": postal,
    }


def _postal_code(value: str | None) -> str | None:
    """Trimmed, as Google's formatter sends it; case and inner spaces kept."""
    if value is None:
        return None
    text = " ".join(unicodedata.normalize("NFC", value).split())
    return text or None


ConsentStyle = Literal["data_manager", "google_ads"]
#: How each API spells a consent state (Data Manager ``ConsentStatus``; Google Ads
#: ``ConsentStatusEnum``); an unknown state is left out, which both read as unspecified.
_CONSENT_VALUES: Final = {
    "data_manager": {"granted": "CONSENT_GRANTED", "denied": "CONSENT_DENIED"},
    "google_ads": {"granted": "GRANTED", "denied": "DENIED"},
}


def consent(event: Event, style: ConsentStyle) -> dict[str, str]:
    """``adUserData`` and (Data Manager only) ``adPersonalization`` as the sender stated them.

    The Google Ads API takes ``ad_personalization`` only for Customer Match uploads
    (``Consent`` reference), so click conversions carry ``adUserData`` alone.
    """
    values = _CONSENT_VALUES[style]
    out: dict[str, str] = {}
    if (user_data := values.get(event.consent.ad_user_data)) is not None:
        out["adUserData"] = user_data
    if (
        style == "data_manager"
        and (personalization := values.get(event.consent.ad_personalization)) is not None
    ):
        out["adPersonalization"] = personalization
    return out


def may_send_user_data(event: Event) -> bool:
    """No user data when the customer denied ``ad_user_data`` (EEA, UK and CH rule)."""
    return event.consent.ad_user_data != "denied"
