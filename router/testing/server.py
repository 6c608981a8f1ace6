"""A Tagless started in the test's own process on a config dir, with a client aimed at it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from router.app import Tagless
from router.clock import Clock
from router.config import load_config_isolating_plugins
from router.plugins import config_classes, load_plugins


def write_config_dir(root: Path, *stores: str, outbox_url: str | None = None) -> Path:
    """A config dir for tests: ephemeral ports, an outbox inside ``root`` (or the PostgreSQL
    database at ``outbox_url``), quick retries, and one ``stores/store<n>.yaml`` per store
    YAML text given. Returns ``root``."""
    (root / "stores").mkdir(parents=True, exist_ok=True)
    outbox = (
        f"{{path: {root / 'tagless.db'}}}" if outbox_url is None else f"{{url: '{outbox_url}'}}"
    )
    (root / "tagless.yaml").write_text(
        "server: {host: 127.0.0.1, port: 0}\n"
        f"outbox: {outbox}\n"
        "admin: {host: 127.0.0.1, port: 0, token: test-admin-token}\n"
        "delivery: {initial_backoff_secs: 0.05, max_backoff_secs: 0.2}\n"
    )
    for index, text in enumerate(stores):
        (root / "stores" / f"store{index}.yaml").write_text(text)
    return root


def basic_auth(key: str) -> dict[str, str]:
    """The Segment convention: the write key as the Basic-auth username, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


class RunningTagless:
    """Start with :meth:`start`, talk to it with :meth:`post`, end with :meth:`stop`."""

    def __init__(
        self, config_dir: Path, env: Mapping[str, str] | None = None, *, clock: Clock | None = None
    ) -> None:
        # loaded as ``tagless serve`` loads it: a store using a broken plugin is refused
        found = load_plugins()
        config, self.refused = load_config_isolating_plugins(
            config_dir, config_classes(found.loaded), found.notes(), env
        )
        self.app = Tagless(config, found.loaded, clock=clock, refused=self.refused)
        self.session: aiohttp.ClientSession | None = None
        self.base = ""

    async def start(self) -> RunningTagless:
        await self.app.start()
        self.session = aiohttp.ClientSession()
        self.base = f"http://127.0.0.1:{self.app.ports['ingest']}"
        return self

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.app.stop()

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        """POST JSON (or ``data=``) to the ingest listener; return status and decoded answer."""
        assert self.session is not None, "call start() first"
        sent = {**(basic_auth(key) if key is not None else {}), **(headers or {})}
        if body is not None:
            kwargs["json"] = body
        async with self.session.post(self.base + path, headers=sent, **kwargs) as response:
            return response.status, await response.json(content_type=None)
