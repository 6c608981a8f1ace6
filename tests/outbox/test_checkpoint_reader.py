"""A checkpoint never holds the writer while a reader keeps an old snapshot of the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from router import codec
from router.outbox.base import NewEvent
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event


def events(prefix: str, count: int, now: float) -> list[NewEvent]:
    return [
        NewEvent("shop", f"{prefix}{i}", now, ("hook",), codec.encode(make_event(event_id="x")))
        for i in range(count)
    ]


@pytest.mark.sqlite_only  # the SQLite WAL and its writer thread
async def test_a_checkpoint_under_a_long_reader_returns_at_once_and_truncates_later(
    outbox: SqliteOutbox, tmp_path: Path
) -> None:
    """With a reader holding a snapshot, the checkpoint gives up on truncating instead of
    waiting in SQLite's busy handler on the writer's thread (every commit waited with it: with
    a ten-minute busy timeout here, the checkpoint did not come back); once the reader ends, the
    next checkpoint truncates the WAL to nothing."""
    await outbox.append(events("a", 500, outbox.clock.now()))

    def patient(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA busy_timeout=600000")

    await outbox.writer.outside_transaction(patient)
    reader = sqlite3.connect(tmp_path / "outbox.db", isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        await outbox.append(events("b", 500, outbox.clock.now()))
        await asyncio.wait_for(outbox.checkpoint(), 30)
        await asyncio.wait_for(outbox.append(events("c", 10, outbox.clock.now())), 30)
    finally:
        with contextlib.suppress(sqlite3.Error):
            reader.execute("COMMIT")
        reader.close()
    wal = tmp_path / "outbox.db-wal"
    assert wal.stat().st_size > 0
    await outbox.checkpoint()
    assert wal.stat().st_size == 0
