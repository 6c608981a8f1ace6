"""A running Tagless whose store sends to a fake platform (Spotify and a webhook)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ops_kit import STORE, start

from router.testing.fake_platform import Answer, FakePlatform
from router.testing.server import RunningTagless


@pytest.fixture
async def platform() -> AsyncIterator[FakePlatform]:
    async with FakePlatform(default=Answer(200, {"message": "SUCCESS"})) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def running(
    tmp_path: Path, platform: FakePlatform, request: pytest.FixtureRequest
) -> AsyncIterator[RunningTagless]:
    """On either outbox backend: the admin pages read both alike."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    server = await start(tmp_path, STORE, platform.url, url)
    yield server
    await server.stop()
