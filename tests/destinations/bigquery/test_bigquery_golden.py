"""BigQuery golden rows: each shared canonical fixture against its reviewed insertAll row."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.bigquery import BigQueryConfig, BigQueryDestination
from router.google_auth import GoogleCredentials
from router.http import HttpClient
from router.secret import Secret
from router.testing.golden import check_golden, fixture_names

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "bigquery"


@pytest.mark.parametrize("name", fixture_names())
def test_golden(name: str) -> None:
    """The insertAll row for each canonical fixture matches tests/golden/bigquery/<name>.json."""
    credentials = GoogleCredentials(
        client_id="c", client_secret=Secret("s"), refresh_token=Secret("r")
    )
    config = BigQueryConfig(
        project="my-project", dataset="tagless", table="events", credentials=credentials
    )
    destination = BigQueryDestination(config, HttpClient.__new__(HttpClient))
    check_golden(destination, name, GOLDEN)
