"""Fixtures of the process tests: spawn `tagless serve` (always killed afterwards), or start
a Tagless in the test's own process (always stopped afterwards)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import TaglessConfig, TaglessServer

from router.testing.server import RunningTagless, write_config_dir


@pytest.fixture
def tagless(tmp_path: Path) -> Iterator[Callable[..., TaglessServer]]:
    """A factory: ``tagless(sink_url, **config)`` writes a config dir and returns a server.

    Servers are not started; every one made here is SIGKILLed (with its process group) when the
    test ends, passed or failed.
    """
    made: list[TaglessServer] = []

    def make(sink_url: str, **settings: Any) -> TaglessServer:
        config = TaglessConfig(tmp_path / f"tagless-{len(made) + 1}", sink_url, **settings)
        server = TaglessServer(config)
        made.append(server)
        return server

    yield make
    for server in made:
        server.cleanup()


@pytest.fixture
async def in_process(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RunningTagless]]]:
    """A factory: ``await in_process(**server)`` starts a Tagless in this process, its
    ``server`` section extended with ``server`` (ephemeral ports, store ``shop`` with write key
    ``shop-key`` and a file destination). Every one started is stopped when the test ends."""
    started: list[RunningTagless] = []

    async def start(**server: Any) -> RunningTagless:
        root = tmp_path / f"in-process-{len(started) + 1}"
        more = "".join(f", {key}: {json.dumps(value)}" for key, value in server.items())
        write_config_dir(root, STORE_YAML.format(sink=json.dumps(str(root / "sink.jsonl"))))
        (root / "tagless.yaml").write_text(
            f"server: {{host: 127.0.0.1, port: 0{more}}}\n"
            f"outbox: {{path: {json.dumps(str(root / 'tagless.db'))}}}\n"
            "admin: {host: 127.0.0.1, port: 0, token: test-admin-token}\n"
        )
        running = RunningTagless(root)
        started.append(running)
        return await running.start()

    yield start
    for running in started:
        await running.stop()


STORE_YAML = """\
store: shop
write_keys: [shop-key]
destinations:
  - {{id: archive, type: file, path: {sink}}}
"""
