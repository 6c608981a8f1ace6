"""The outbox's writer thread: group commits, failures that keep nothing, a clean close."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from router.outbox import writer as writer_module
from router.outbox.base import OutboxUnavailable
from router.outbox.writer import GroupWriter
from tests.writer_kit import event, stored


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


async def test_a_commit_with_known_events_counts_only_its_own_new_ones_beside_another_writer(
    tmp_path: Path,
) -> None:
    """Ingest processes write the same file: a commit that meets a known event_id counts the
    events it stored itself, not also those another writer committed since its last commit."""
    path = tmp_path / "o.db"
    one, other = GroupWriter(path, synchronous="FULL", shared=True), None
    await one.open(now=1.0)
    other = GroupWriter(path, synchronous="FULL", shared=True)
    await other.open(now=1.0)
    seen: list[dict[tuple[str, tuple[str, ...]], int]] = []
    one.on_commit = lambda added: seen.append(dict(added))
    await one.append([event("a")])
    await other.append([event("b"), event("c")])
    await one.append([event("a"), event("d")])  # "a" is known
    await one.close()
    await other.close()
    assert seen == [{("shop", ("hook",)): 1}, {("shop", ("hook",)): 1}]
    assert stored(path) == ["a", "b", "c", "d"]


async def test_a_commit_of_known_events_only_counts_nothing_and_reads_no_table(
    tmp_path: Path,
) -> None:
    """A client's retry after a restart: every event of the commit is known. It adds nothing
    to the backlog; it used to count every event stored since this connection's previous
    insert (after a restart, the whole table) as its own."""
    path = tmp_path / "o.db"
    first = await open_writer(path)
    await first.append([event(f"e{i}") for i in range(20)])
    await first.close()
    restarted = await open_writer(path)
    seen: list[dict[tuple[str, tuple[str, ...]], int]] = []
    restarted.on_commit = lambda added: seen.append(dict(added))
    statements: list[str] = []
    await restarted.write(lambda db: db.set_trace_callback(statements.append))
    await restarted.append([event("e3"), event("e7")])
    await restarted.close()
    assert seen == []
    assert not [s for s in statements if "count(" in s], statements
    assert stored(path) == [f"e{i}" for i in range(20)]


@pytest.mark.parametrize("hold_still", [True, False])
async def test_a_delivering_writer_holds_its_loop_still_through_its_turn(
    tmp_path: Path, hold_still: bool
) -> None:
    """With ``hold_loop_still`` (the delivering process, at a lower priority) the event loop
    runs nothing while the writer waits for and holds the writers' lock, so it cannot hold
    the GIL the commit's statements need; without it, the loop goes on meanwhile."""
    path = tmp_path / "o.db"
    writer = GroupWriter(path, synchronous="FULL", shared=True)
    await writer.open(now=1.0)
    writer.hold_loop_still = hold_still
    assert writer.lock_path is not None
    holder = os.open(writer.lock_path, os.O_RDWR)  # another process's turn
    fcntl.flock(holder, fcntl.LOCK_EX)
    loop = asyncio.get_running_loop()
    ran = threading.Event()

    def other_process() -> bool:
        time.sleep(0.3)  # the writer waits for the lock by now
        loop.call_soon_threadsafe(ran.set)
        time.sleep(0.3)
        ran_meanwhile = ran.is_set()
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        return ran_meanwhile

    meanwhile = loop.run_in_executor(None, other_process)
    await asyncio.wait_for(writer.append([event("a")]), 5)
    assert await meanwhile is not hold_still
    await writer.close()
    assert stored(path) == ["a"]
    assert ran.is_set()


async def test_a_loop_late_to_hold_still_is_waited_for_before_the_lock_is_taken(
    tmp_path: Path,
) -> None:
    """An idle-class loop may not be scheduled for a while: the writer waits for it to hold
    still before it takes the writers' lock. Taken first, the commit would need the GIL from
    a thread that is not running while every other process waits for the lock."""
    path = tmp_path / "o.db"
    writer = GroupWriter(path, synchronous="FULL", shared=True)
    await writer.open(now=1.0)
    writer.hold_loop_still = True
    appending = asyncio.create_task(writer.append([event("a")]))
    for _ in range(100):  # until the job is queued, then handed to the writer thread
        if writer.unfinished and not writer._jobs:
            break
        await asyncio.sleep(0)
    assert writer.unfinished and not writer._jobs
    time.sleep(0.4)  # noqa: ASYNC251 - the loop's thread, not scheduled: it cannot hold still
    stored_while_away = stored(path)
    await asyncio.wait_for(appending, 5)
    await writer.close()
    assert stored_while_away == []
    assert stored(path) == ["a"]


async def test_a_loop_that_does_not_hold_still_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer waits a bounded time for the loop to hold still, then commits anyway."""
    monkeypatch.setattr(writer_module, "HOLD_STILL_WAIT_SECS", 0.1)
    path = tmp_path / "o.db"
    writer = GroupWriter(path, synchronous="FULL", shared=True)
    await writer.open(now=1.0)
    writer.hold_loop_still = True
    never_runs = asyncio.new_event_loop()  # a loop nobody runs: it never comes to hold still
    writer._loop = never_runs
    try:
        await asyncio.wait_for(writer.append([event("a")]), 5)
    finally:
        await writer.close()
        never_runs.close()
    assert stored(path) == ["a"]


async def test_a_writer_alone_takes_no_lock_file(tmp_path: Path) -> None:
    writer = await open_writer(tmp_path / "o.db")
    await writer.append([event("a")])
    await writer.close()
    assert writer.lock_path is None
    assert not (tmp_path / "o.db-writers.lock").exists()


async def test_a_commit_of_appends_only_is_one_statement_and_one_with_writes_a_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends alone go in as one INSERT, its own transaction (each statement costs the writer
    thread the GIL back from a busy loop while it holds the writers' lock); a commit that also
    runs a write keeps BEGIN IMMEDIATE ... COMMIT around all of it."""
    monkeypatch.setattr(writer_module, "INLINE_MAX_ROWS", 0)  # every commit in the thread
    writer = await open_writer(tmp_path / "o.db")
    statements: list[str] = []
    await writer.write(lambda db: db.set_trace_callback(statements.append))
    statements.clear()
    await writer.append([event("a"), event("b")])
    appends_only = [s.split()[0] for s in statements]
    statements.clear()
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(db: sqlite3.Connection) -> None:  # holds the thread so the next jobs group up
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()

    first = asyncio.create_task(writer.write(slow))
    await asyncio.sleep(0.05)
    grouped = asyncio.gather(
        writer.append([event("c")]), writer.write(lambda db: db.execute("SELECT 1"))
    )
    await asyncio.sleep(0.05)
    statements.clear()
    gate.set()
    await first
    await grouped
    grouped_statements = [s.split()[0] for s in statements]
    await writer.close()
    assert appends_only == ["INSERT"]
    # the slow write's COMMIT, then the group of an append and a write in one transaction
    assert grouped_statements == ["COMMIT", "BEGIN", "INSERT", "SELECT", "COMMIT"]
    assert stored(tmp_path / "o.db") == ["a", "b", "c"]


@pytest.mark.parametrize("inline", [True, False], ids=["loop-thread", "writer-thread"])
async def test_a_failing_statement_of_appends_keeps_none_of_its_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    """The one-statement commit is all or nothing: a row SQLite refuses undoes the rows before
    it in the same statement, every caller of the group hears of it, and the writer goes on,
    whichever thread commits."""
    if not inline:
        monkeypatch.setattr(writer_module, "INLINE_MAX_ROWS", 0)
    path = tmp_path / "o.db"
    writer = await open_writer(path)
    await writer.write(
        lambda db: db.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON events WHEN NEW.event_id = 'bad'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    )
    with pytest.raises(OutboxUnavailable, match="refused by the test"):
        await writer.append([event("a"), event("bad"), event("c")])
    await writer.append([event("d")])
    await writer.close()
    assert stored(path) == ["d"]
