"""The ``admin`` fixture: a running Tagless with a webhook and a client of its admin listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from admin_kit import STORE_YAML, Admin

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    hook = FakePlatform()
    await hook.start()
    running = RunningTagless(write_config_dir(tmp_path, STORE_YAML.format(url=hook.url)))
    await running.start()
    client = Admin(running, hook)
    hook.responder = client.answer
    yield client
    await client.http.close()
    await running.stop()
    await hook.stop()
