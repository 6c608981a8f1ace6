"""A running Tagless (in this process) on a temporary config, with a fake platform as webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir

STORE_YAML = """\
store: shop
write_keys: [shop-key]
allowed_origins: ["https://shop.example"]
client_ip: {{trusted_proxies: [127.0.0.1/32]}}
destinations:
  - {{id: hook, type: webhook, url: "{url}/hook", max_batch_size: 250}}
"""
OTHER_YAML = """\
store: other
write_keys: [other-key]
destinations: []
"""


def write_config(root: Path, sink_url: str) -> Path:
    """A config dir with stores ``shop`` (webhook to the sink) and ``other`` (no destination)."""
    return write_config_dir(root, STORE_YAML.format(url=sink_url), OTHER_YAML)


class Running(RunningTagless):
    """A running Tagless for store ``shop`` with the fake platform as its webhook."""

    def __init__(self, config_dir: Path, sink: FakePlatform) -> None:
        super().__init__(config_dir)
        self.sink = sink

    async def post(
        self, path: str, body: Any = None, *, key: str | None = "shop-key", **kwargs: Any
    ) -> tuple[int, Any]:
        return await super().post(path, body, key=key, **kwargs)


@pytest.fixture
async def tagless_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Running] = []

    async def start() -> Running:
        sink = FakePlatform()
        await sink.start()
        running = Running(write_config(tmp_path / f"cfg{len(started)}", sink.url), sink)
        started.append(running)
        await running.start()
        return running

    yield start
    for running in started:
        await running.stop()
        await running.sink.stop()


@pytest.fixture
async def tagless(tagless_factory: Callable[..., Any]) -> Running:
    running: Running = await tagless_factory()
    return running
