"""The outbox's writer thread: group commits, failures that keep nothing, a clean close."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from router.outbox.base import NewEvent, OutboxUnavailable
from router.outbox.writer import GroupWriter


def event(event_id: str) -> NewEvent:
    return NewEvent("shop", event_id, 1.0, ("hook",), b'{"event_id":"' + event_id.encode() + b'"}')


def stored(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]


async def open_writer(path: Path) -> GroupWriter:
    writer = GroupWriter(path, synchronous="FULL")
    await writer.open(now=1.0)
    return writer


async def test_a_failing_write_fails_its_whole_group_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    """A bug in one write rolls back everything committed with it; the next commit works."""
    writer = await open_writer(tmp_path / "o.db")
    gate = asyncio.Event()

    def slow(db: sqlite3.Connection) -> None:  # holds the thread so the next jobs group up
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()

    def broken(db: sqlite3.Connection) -> None:
        raise KeyError("bug")

    loop = asyncio.get_running_loop()
    first = asyncio.create_task(writer.write(slow))
    await asyncio.sleep(0.05)
    grouped = [
        asyncio.create_task(writer.append([event("a"), event("b")])),
        asyncio.create_task(writer.write(broken)),
    ]
    await asyncio.sleep(0.05)
    gate.set()
    await first
    results = await asyncio.gather(*grouped, return_exceptions=True)
    assert all(isinstance(r, KeyError) for r in results), results
    await writer.append([event("c")])
    await writer.close()
    assert stored(tmp_path / "o.db") == ["c"]


async def test_close_commits_what_was_queued_then_refuses(tmp_path: Path) -> None:
    """Appends queued before close() are committed; afterwards the writer says it is closed."""
    writer = await open_writer(tmp_path / "o.db")
    pending = [asyncio.create_task(writer.append([event(f"e{i}")])) for i in range(50)]
    await asyncio.sleep(0)  # every append is queued
    await writer.close()
    await asyncio.gather(*pending)
    assert stored(tmp_path / "o.db") == [f"e{i}" for i in range(50)]
    assert not (tmp_path / "o.db-wal").exists() or (tmp_path / "o.db-wal").stat().st_size == 0
    with pytest.raises(OutboxUnavailable):
        await writer.append([event("late")])


async def test_open_reports_a_database_that_cannot_be_opened(tmp_path: Path) -> None:
    """The thread's connection error reaches open(); the writer stays closed."""
    (tmp_path / "o.db").mkdir()
    writer = GroupWriter(tmp_path / "o.db", synchronous="FULL")
    with pytest.raises(sqlite3.Error):
        await writer.open(now=1.0)
    assert not writer.is_open


async def test_a_write_submitted_while_the_writer_closes_is_refused_not_left_waiting(
    tmp_path: Path,
) -> None:
    """A write that arrives after the writer's last commit but before close() returns fails
    at once; it used to wait forever (and with it, whoever awaited it)."""
    writer = await open_writer(tmp_path / "o.db")

    async def one_write_after_another() -> None:  # like the maintenance loop, store by store
        await writer.write(lambda db: None)
        await writer.write(lambda db: None)

    chain = asyncio.create_task(one_write_after_another())
    await asyncio.sleep(0)  # the first write is queued
    await writer.close()
    with pytest.raises(OutboxUnavailable):
        await asyncio.wait_for(chain, 5)
