"""BigQuery fixtures: a service-account key, a local token endpoint, a fake BigQuery, and the
destination pointed at both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator import Emulator
from fake_bigquery import FakeBigQuery, bigquery_config

from destinations.bigquery import BigQueryDestination
from router.http import HttpClient
from router.testing.google_token import LocalTokenServer, make_service_account


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "service-account.json"


@pytest.fixture
def service_account(key_file: Path) -> dict[str, Any]:
    """A service account with a freshly generated key, written to ``key_file``."""
    return make_service_account(key_file)


@pytest.fixture
async def tokens(service_account: dict[str, Any]) -> AsyncIterator[LocalTokenServer]:
    """Google's token endpoint, locally, trusting ``service_account``'s key."""
    async with LocalTokenServer(service_accounts=[service_account]) as server:
        yield server


@pytest.fixture
async def bigquery() -> AsyncIterator[FakeBigQuery]:
    """A running fake BigQuery insertAll."""
    fake = FakeBigQuery()
    async with fake.platform:
        yield fake


@pytest.fixture
def destination(
    bigquery: FakeBigQuery, tokens: LocalTokenServer, key_file: Path, http: HttpClient
) -> BigQueryDestination:
    """The bigquery destination aimed at the fake, authenticating at the local token endpoint."""
    config = bigquery_config(bigquery.platform.url, tokens.url, key_file)
    return BigQueryDestination(config, http)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A local BigQuery (bqemulator) for the whole session, stopped at its end; fails (not
    skips) when scripts/bqemulator.sh has not installed it."""
    running = Emulator(tmp_path_factory.mktemp("bqemulator") / "emulator.log")
    try:
        yield running.start()
    finally:
        running.stop()
