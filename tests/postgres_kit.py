"""PostgreSQL for the tests: one throwaway database per test run on the server at
127.0.0.1:5432 (``make test`` starts one when none answers), emptied before each test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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
