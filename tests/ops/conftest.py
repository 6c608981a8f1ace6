"""A running Tagless whose store sends to a fake platform (Spotify and a webhook)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ops_kit import STORE

from router.testing.fake_platform import Answer, FakePlatform
from router.testing.server import RunningTagless, write_config_dir


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
    config = write_config_dir(tmp_path, STORE.format(url=platform.url), outbox_url=url)
    server = await RunningTagless(config).start()
    yield server
    await server.stop()
