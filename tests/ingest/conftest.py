"""A running Tagless (in this process) on a temporary config, with a fake platform as webhook."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, basic_auth, write_config_dir

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

    async def answer(
        self, path: str, data: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, str, Any]:
        """POST raw bytes as store ``shop``: status, content type and the JSON answer (or the
        text of an answer that is not JSON, so that a test shows what came back)."""
        assert self.session is not None
        sent = {**basic_auth("shop-key"), **(headers or {})}
        async with self.session.post(self.base + path, data=data, headers=sent) as response:
            raw = await response.read()
            try:
                return response.status, response.content_type, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return response.status, response.content_type, raw.decode(errors="replace")

    def stored_ids(self) -> list[str]:
        """The event ids in the outbox, in the order they were stored."""
        with sqlite3.connect(self.app.config.outbox.path) as db:
            return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]

    def stored_body(self, event_id: str) -> bytes:
        """The stored JSON of one event, as the outbox holds it."""
        with sqlite3.connect(self.app.config.outbox.path) as db:
            [(body,)] = db.execute("SELECT body FROM events WHERE event_id = ?", (event_id,))
        return bytes(body)


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
