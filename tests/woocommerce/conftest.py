"""Fixtures of the WooCommerce plugin tests: PHP and MariaDB present (else fail, not skip), a
WordPress database of the test's own, and a shop whose requests run the plugin's PHP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "clients" / "woocommerce"
DRIVER = PLUGIN / "tests" / "e2e" / "driver.php"
STEP_TIMEOUT_SECS = 120.0


@pytest.fixture(scope="session")
def php() -> str:
    """PHP, PHPUnit, WordPress and a MariaDB answering: `make test` installs them."""
    missing = [tool for tool in ("php", "phpunit") if shutil.which(tool) is None]
    if not Path("/usr/share/wordpress/wp-settings.php").exists():
        missing.append("wordpress")
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `bash scripts/php-deps.sh`")
    ping = subprocess.run(
        ["php", "-r", "new mysqli('127.0.0.1', 'root', '');"], capture_output=True, timeout=30
    )
    if ping.returncode != 0:
        pytest.fail("MariaDB does not answer on 127.0.0.1:3306: run `bash scripts/php-deps.sh`")
    return shutil.which("php") or "php"


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


@pytest.fixture
async def shop(php: str) -> AsyncIterator[Shop]:
    """A fresh shop database, dropped when the test ends."""
    made = Shop(php, f"tagless_e2e_{uuid.uuid4().hex[:12]}")
    yield made
    await made.drop()
