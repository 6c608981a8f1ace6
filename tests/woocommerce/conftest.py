"""Fixtures of the WooCommerce plugin tests: PHP and MariaDB present (else fail, not skip), a
WordPress database of the test's own, and a shop whose requests run the plugin's PHP."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wordpress_shop import Shop

# The end-to-end tests run `tagless serve` as a child process with the process tests' harness.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "process"))


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


@pytest.fixture
async def shop(php: str) -> AsyncIterator[Shop]:
    """A fresh shop database, dropped when the test ends."""
    made = Shop(php, f"tagless_e2e_{uuid.uuid4().hex[:12]}")
    yield made
    await made.drop()
