"""Shared fixtures: a fresh SQLite outbox, a fake clock, a fake platform server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.clock import FakeClock
from router.http import HttpClient
from router.outbox.sqlite import SqliteOutbox
from router.testing.fake_platform import FakePlatform

pytest_plugins = ["tests.postgres_kit"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def outbox(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteOutbox]:
    box = SqliteOutbox(tmp_path / "outbox.db", clock=clock, lease_secs=30.0)
    await box.open()
    yield box
    await box.close()


@pytest.fixture
async def platform() -> AsyncIterator[FakePlatform]:
    async with FakePlatform() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient.create()
    yield client
    await client.close()
