"""Golden mapping files: each shared fixture event as the Meta server event Tagless sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.meta_capi import MetaCapiConfig, MetaCapiDestination
from router.http import HttpClient
from router.secret import Secret
from router.testing.golden import check_golden, fixture_names

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "meta_capi"


@pytest.mark.parametrize("name", fixture_names())
def test_golden(name: str) -> None:
    """The mapping of each fixture equals its reviewed golden file."""
    config = MetaCapiConfig(pixel_id="1234567890", access_token=Secret("token"))
    destination = MetaCapiDestination(config, HttpClient.__new__(HttpClient))
    check_golden(destination, name, GOLDEN)
