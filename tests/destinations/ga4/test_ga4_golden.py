"""GA4 golden mapping: each shared canonical fixture against its reviewed payload file."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.ga4 import Ga4Config, Ga4Destination
from router.http import HttpClient
from router.secret import Secret
from router.testing.golden import check_golden, fixture_names

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "ga4"


@pytest.mark.parametrize("name", fixture_names())
def test_golden(name: str) -> None:
    """The GA4 request for each canonical fixture matches tests/golden/ga4/<name>.json."""
    config = Ga4Config(measurement_id="G-TEST1234", api_secret=Secret("secret"))
    destination = Ga4Destination(config, HttpClient.__new__(HttpClient))
    check_golden(destination, name, GOLDEN)
