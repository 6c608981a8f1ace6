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


@pytest.fixture
async def running(tmp_path: Path, platform: FakePlatform) -> AsyncIterator[RunningTagless]:
    server = await start(tmp_path, STORE, platform.url)
    yield server
    await server.stop()
