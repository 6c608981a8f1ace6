"""PostgreSQL for the tests: one throwaway database per test run on the server at
127.0.0.1:5432 (``make test`` starts one when none answers), emptied before each test."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

#: The server the tests use; TAGLESS_TEST_POSTGRES overrides it (a superuser's URL, no database).
SERVER = os.environ.get("TAGLESS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


async def _execute(sql: str, database: str = "postgres") -> None:
    db = await asyncpg.connect(f"{SERVER}/{database}", timeout=5)
    try:
        await db.execute(sql)
    finally:
        await db.close()


def _admin(sql: str, database: str = "postgres") -> None:
    """Run ``sql`` on a database of the server (default: the maintenance one), from a thread
    of its own (a fixture may be set up while a test's event loop runs)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _execute(sql, database)).result()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: tests the SQLite file, not the interface")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``sqlite_only`` test parametrised over the backends runs once, on SQLite."""
    for item in list(items):
        spec = getattr(item, "callspec", None)
        on_postgres = spec is not None and "postgres" in spec.params.values()
        if on_postgres and item.get_closest_marker("sqlite_only"):
            items.remove(item)


def outbox_at(path: Path, **options: Any) -> Any:
    """The outbox of the config dir holding ``path`` (its default SQLite file): PostgreSQL
    when its tagless.yaml names a URL (a test's config on either backend)."""
    from router.outbox.postgres import PostgresOutbox
    from router.outbox.sqlite import SqliteOutbox

    found = re.search(r"url: '([^']+)'", (path.parent / "tagless.yaml").read_text())
    return PostgresOutbox(found.group(1), **options) if found else SqliteOutbox(path, **options)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a database created for this test run and dropped after it."""
    name = f"tagless_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _admin(f"CREATE DATABASE {name}")
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        if os.environ.get("TAGLESS_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL at {SERVER} ({error}); `make test` starts one")
    yield f"{SERVER}/{name}"
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The test run's database, emptied: no tables, so the outbox creates its schema."""
    _admin("DROP SCHEMA public CASCADE; CREATE SCHEMA public", pg_database.rsplit("/", 1)[1])
    return pg_database
