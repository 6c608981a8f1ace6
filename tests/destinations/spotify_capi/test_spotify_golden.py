"""Golden mapping of every shared canonical fixture to a Spotify CAPI ConversionEvent."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.spotify_capi import SpotifyCapiConfig, SpotifyCapiDestination
from router.http import HttpClient
from router.secret import Secret
from router.testing.golden import check_golden, fixture_names

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "spotify_capi"


@pytest.mark.parametrize("name", fixture_names())
async def test_spotify_golden(name: str, http: HttpClient) -> None:
    """Each fixture maps to the reviewed payload in tests/golden/spotify_capi/<name>.json."""
    config = SpotifyCapiConfig(
        connection_id="3f2b8c1e-0a4d-4e6f-9b7a-1c2d3e4f5a6b",
        token=Secret("capi-token-abc123"),
        custom_events={"Gift Card Redeemed": "CUSTOM_EVENT_1"},
    )
    check_golden(SpotifyCapiDestination(config, http), name, GOLDEN)
