"""The outbox suite runs on both backends: ``outbox`` is a fresh SQLite file or a fresh
PostgreSQL database, ``query`` reads it with plain SQL, ``reopen`` opens it again as a
restarted process would. Tests marked ``sqlite_only`` (tests/postgres_kit.py) test the file
itself."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from router.clock import FakeClock
from router.outbox.postgres import PostgresOutbox
from router.outbox.sqlite import SqliteOutbox

BACKENDS = ("sqlite", "postgres")

Query = Callable[[str], Awaitable[list[tuple[Any, ...]]]]
Reopen = Callable[..., Any]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the outbox lives: the SQLite file's path or the database URL."""
    if backend == "sqlite":
        return str(tmp_path / "outbox.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def reopen(backend: str, storage: str, clock: FakeClock) -> Reopen:
    """An outbox on the same storage (not opened), as another process would see it."""

    def make(**options: Any) -> Any:
        options.setdefault("clock", clock)
        if backend == "sqlite":
            return SqliteOutbox(storage, **options)
        return PostgresOutbox(storage, **options)

    return make


@pytest.fixture
async def outbox(reopen: Reopen) -> AsyncIterator[Any]:
    box = reopen(lease_secs=30.0)
    await box.open()
    yield box
    await box.close()


@pytest.fixture
def query(backend: str, storage: str) -> Query:
    """Rows of a plain SQL query on the storage, from a connection of its own."""

    async def run(sql: str) -> list[tuple[Any, ...]]:
        if backend == "sqlite":
            with sqlite3.connect(storage) as db:
                return [tuple(row) for row in db.execute(sql)]
        db = await asyncpg.connect(storage)
        try:
            return [tuple(row) for row in await db.fetch(sql)]
        finally:
            await db.close()

    return run
