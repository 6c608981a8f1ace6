"""Golden payloads: each shared fixture, and click-id and consent variants, in both modes."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from destinations.google_ads import GoogleAdsConfig, GoogleAdsDestination
from router.event import Consent
from router.google_auth import GoogleCredentials
from router.http import HttpClient
from router.secret import Secret
from router.testing.golden import check_golden, fixture_names, load_fixture

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "google_ads"
MODES = ("data_manager", "click_upload")
#: Variants of the purchase fixture that the shared fixtures do not cover.
VARIANTS = {
    # every click id given: only the gclid goes
    "purchase_with_click_ids": {
        "gclid": "Cj0KCQiA-gclid",
        "gbraid": "0AAAA-gbraid",
        "wbraid": "wbraid-1",
    },
    # iOS web click: the wbraid alone
    "purchase_with_wbraid": {"wbraid": "wbraid-1"},
    # ad_user_data denied, policy `send`: the click id and the denial go, no user data
    "purchase_consent_denied": {
        "gclid": "Cj0KCQiA-gclid",
        "consent": Consent(ad_user_data="denied", ad_personalization="denied"),
    },
}


def destination(mode: str) -> GoogleAdsDestination:
    config = GoogleAdsConfig(
        mode=mode,  # type: ignore[arg-type]
        customer_id="1234567890",
        login_customer_id="1112223333",
        conversion_actions={
            "purchase": "987654321",
            "generate_lead": "987654322",
            "sign_up": "987654323",
            "begin_checkout": "987654324",
            "add_to_cart": "987654325",
        },
        credentials=GoogleCredentials(
            client_id="client", client_secret=Secret("s"), refresh_token=Secret("r")
        ),
        developer_token=Secret("dev-token"),
    )
    return GoogleAdsDestination(config, HttpClient.__new__(HttpClient))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", fixture_names())
def test_golden(mode: str, name: str) -> None:
    """The mapping of each fixture equals its reviewed golden file (page views and others
    without a conversion action are refused: routing never sends them here)."""
    check_golden(destination(mode), name, GOLDEN / mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_golden_variants(mode: str, name: str) -> None:
    """Click-id and consent variants of the purchase equal their golden files."""
    event = attrs.evolve(load_fixture("purchase"), **VARIANTS[name])
    check_golden(destination(mode), name, GOLDEN / mode, event)
