"""Mapping: one readable golden payload per canonical fixture, each in Pinterest's documented
shape (the ``events/create`` request schema of Pinterest's OpenAPI description)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from tagless_destination_pinterest import PinterestConfig, PinterestDestination
from tagless_destination_pinterest.mapping import conversion

from router.sdk import MissingIdentity, Secret, sha256_hex
from router.testing.golden import check_golden, fixture_names, load_fixture

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
SCHEMA = json.loads((HERE / "documented_format.json").read_text())


def destination() -> PinterestDestination:
    config = PinterestConfig(ad_account_id="549757463328", access_token=Secret("token"))
    return PinterestDestination(config, http=None)  # type: ignore[arg-type]  # map needs none


@pytest.mark.parametrize("name", fixture_names())
def test_golden(name: str) -> None:
    """Each canonical fixture maps to its reviewed golden payload."""
    check_golden(destination(), name, GOLDEN)


@pytest.mark.parametrize("name", fixture_names())
def test_golden_payloads_use_only_documented_fields(name: str) -> None:
    """Every key of every golden payload is one the documented schema names, with the
    required keys present and the event name from the documented list."""
    payload = json.loads((GOLDEN / f"{name}.json").read_text())
    if "mapping_error" in payload:
        return
    assert set(SCHEMA["required"]) <= set(payload)
    assert set(payload) <= set(SCHEMA["event_keys"])
    assert payload["event_name"] in SCHEMA["event_names"]
    assert set(payload["user_data"]) <= set(SCHEMA["user_data_keys"])
    assert set(payload.get("custom_data", {})) <= set(SCHEMA["custom_data_keys"])
    for item in payload.get("custom_data", {}).get("contents", []):
        assert set(item) <= set(SCHEMA["contents_keys"])


def test_identity_is_hashed_as_pinterest_documents() -> None:
    """Email lowercased and trimmed, phone digits with country code, then SHA-256 hex."""
    event = load_fixture("purchase")
    data = conversion(event)["user_data"]
    assert data["em"] == [sha256_hex("john.smith@gmail.com")]
    assert data["ph"] == [sha256_hex("442079460958")]
    assert "john" not in json.dumps(data).lower()


def test_an_event_without_email_or_ip_and_agent_is_skippable() -> None:
    """Pinterest needs an email, or an IP with a user agent: without, MissingIdentity (which
    Tagless skips when consent removed them, and dead-letters otherwise)."""
    event = attrs.evolve(load_fixture("purchase"), emails=(), user_agent=None)
    with pytest.raises(MissingIdentity):
        conversion(event)
