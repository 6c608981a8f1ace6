"""PostgreSQL for the tests: one throwaway database per test run on the server at
127.0.0.1:5432 (``make test`` starts one when none answers), emptied before each test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

#: The server the tests use; TAGLESS_TEST_POSTGRES overrides it (a superuser's URL, no database).
SERVER = os.environ.get("TAGLESS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


async def _admin(sql: str) -> None:
    db = await asyncpg.connect(f"{SERVER}/postgres", timeout=5)
    try:
        await db.execute(sql)
    finally:
        await db.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a database created for this test run and dropped after it."""
    name = f"tagless_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as error:
        if os.environ.get("TAGLESS_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL at {SERVER} ({error}); `make test` starts one")
    yield f"{SERVER}/{name}"
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def pg_url(pg_database: str) -> AsyncIterator[str]:
    """The test run's database, emptied: no tables, so the outbox creates its schema."""
    db = await asyncpg.connect(pg_database)
    try:
        await db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await db.close()
    yield pg_database
