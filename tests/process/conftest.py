"""Fixtures of the process tests: spawn `tagless serve` and always kill it afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import TaglessConfig, TaglessServer


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
