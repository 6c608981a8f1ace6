"""A WordPress shop running the WooCommerce plugin's PHP, one process per request, for tests."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

PLUGIN = Path(__file__).resolve().parents[2] / "clients" / "woocommerce"
DRIVER = PLUGIN / "tests" / "e2e" / "driver.php"
STEP_TIMEOUT_SECS = 120.0


class Shop:
    """A WordPress shop on its own database: each :meth:`request` is one PHP process running
    the plugin's hooks, with a cookie jar carried between requests like a browser's."""

    def __init__(self, php: str, database: str) -> None:
        self.php = php
        self.env = {**os.environ, "TAGLESS_WP_DB": database}
        self.jar: dict[str, str] = {}

    async def request(
        self,
        step: str,
        *,
        server: dict[str, str] | None = None,
        keep_cookies: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """Run one driver step; returns its result. ``keep_cookies`` sends and keeps the jar."""
        body = {"server": server or {}, "cookies": self.jar if keep_cookies else {}, **fields}
        answer = await self._run(step, body)
        if keep_cookies:
            self.jar = dict(answer["cookies"])
        return dict(answer["result"])

    async def drop(self) -> None:
        await self._run("drop", {})

    async def _run(self, step: str, body: dict[str, Any]) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            self.php,
            str(DRIVER),
            step,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(json.dumps(body).encode()), STEP_TIMEOUT_SECS
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise AssertionError(
                f"driver step {step} exited {proc.returncode}:\n{out.decode()}\n{err.decode()}"
            )
        return dict(json.loads(out.decode().strip().splitlines()[-1]))
