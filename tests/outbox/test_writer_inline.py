"""Group commits from the event loop's thread: taken only when no lock is in the way."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.outbox import writer as writer_module
from router.outbox.writer import GroupWriter
from tests.writer_kit import another_process_s_turn, event, stored


class Traced:
    """A writer whose connection records each statement with the thread that ran it."""

    def __init__(self, writer: GroupWriter) -> None:
        self.writer = writer
        self.statements: list[tuple[int, str]] = []

    async def trace(self) -> None:
        def record(statement: str) -> None:
            self.statements.append((threading.get_ident(), statement))

        await self.writer.write(lambda db: db.set_trace_callback(record))
        self.statements.clear()

    def by_thread(self) -> list[tuple[str, str]]:
        """Each statement so far, shortened, with "loop" or "thread": which ran it."""
        return [
            ("loop" if ident == threading.get_ident() else "thread", " ".join(s.split()[:2]))
            for ident, s in self.statements
        ]

    def inserts_by(self) -> list[str]:
        """For each INSERT so far: "loop" or "thread", the thread that ran it."""
        return [by for by, statement in self.by_thread() if statement.startswith("INSERT")]


async def open_traced(path: Path, *, shared: bool) -> Traced:
    writer = GroupWriter(path, synchronous="FULL", shared=shared)
    await writer.open(now=1.0)
    traced = Traced(writer)
    await traced.trace()
    return traced


@pytest.fixture(params=[False, True], ids=["alone", "shared"])
async def traced(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Traced]:
    traced = await open_traced(tmp_path / "o.db", shared=request.param)
    yield traced
    await traced.writer.close()


async def test_a_small_group_of_appends_is_committed_by_the_loop_s_thread(traced: Traced) -> None:
    """No lock in the way: the INSERT runs in the event loop's thread, busy_timeout 0 around
    it (a lock taken meanwhile is never waited for there), and the events are stored."""
    await traced.writer.append([event("a"), event("b")])
    assert traced.by_thread() == [
        ("loop", "PRAGMA busy_timeout=0"),
        ("loop", "INSERT OR"),
        ("loop", f"PRAGMA busy_timeout={writer_module.BUSY_TIMEOUT_MS}"),
    ]
    assert stored(traced.writer.path) == ["a", "b"]


async def test_another_process_s_turn_is_waited_for_in_the_writer_thread(tmp_path: Path) -> None:
    """While another process holds the writers' lock, the commit goes to the writer thread,
    which waits for it (in the kernel, not in SQLite's sleeping busy handler) and commits once
    it is free; the loop keeps running meanwhile, and the next commit is the loop's again."""
    traced = await open_traced(tmp_path / "o.db", shared=True)
    writer = traced.writer
    with another_process_s_turn(writer):
        pending = asyncio.create_task(writer.append([event("a")]))
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not pending.done()
        assert stored(writer.path) == []
    await asyncio.wait_for(pending, 5)
    await writer.append([event("b")])  # the lock is free again: back to the loop's thread
    await writer.close()
    assert traced.inserts_by() == ["thread", "loop"]
    assert stored(writer.path) == ["a", "b"]


async def test_sqlite_s_lock_held_by_another_connection_is_waited_for_in_the_writer_thread(
    tmp_path: Path,
) -> None:
    """A connection that writes without the writers' lock (a command run beside a Tagless of
    one process) holds SQLite's lock: the INSERT from the loop's thread, with busy_timeout 0,
    gets busy at once (not after the writer's busy timeout) and writes nothing; the writer
    thread waits for the lock and commits; the loop keeps running meanwhile."""
    traced = await open_traced(tmp_path / "o.db", shared=False)
    writer = traced.writer
    other = sqlite3.connect(writer.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    pending = asyncio.create_task(writer.append([event("a")]))
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert not pending.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(pending, 5)
    await writer.close()
    assert traced.by_thread()[:4] == [
        ("loop", "PRAGMA busy_timeout=0"),
        ("loop", "INSERT OR"),  # busy
        ("loop", f"PRAGMA busy_timeout={writer_module.BUSY_TIMEOUT_MS}"),
        ("thread", "INSERT OR"),
    ]
    assert stored(writer.path) == ["a"]


async def test_a_call_between_commits_keeps_the_connection_from_the_loop_s_thread(
    traced: Traced,
) -> None:
    """While the writer thread runs a call between commits (a checkpoint, a vacuum), an
    append does not use the connection from the loop's thread: it waits its turn in the
    writer thread, after the call."""
    release = threading.Event()
    seen: list[str] = []

    def call(db: sqlite3.Connection) -> None:
        release.wait(5)
        seen.extend(stored(traced.writer.path))

    between = asyncio.create_task(traced.writer.outside_transaction(call))
    await asyncio.sleep(0.05)
    appended = asyncio.create_task(traced.writer.append([event("a")]))
    for _ in range(10):
        await asyncio.sleep(0.01)
    assert not appended.done()
    release.set()
    await between
    await asyncio.wait_for(appended, 5)
    assert seen == []  # the append was not committed while the call ran
    assert traced.inserts_by() == ["thread"]
    assert stored(traced.writer.path) == ["a"]


async def test_large_groups_writes_and_a_lowered_loop_commit_in_the_writer_thread(
    traced: Traced,
) -> None:
    """More than INLINE_MAX_ROWS events, a group with a write, a loop that runs at a lowered
    priority (hold_loop_still: its commits would hold the lock at that priority): the writer
    thread commits."""
    writer = traced.writer
    await writer.append([event(f"big{i}") for i in range(writer_module.INLINE_MAX_ROWS + 1)])
    await writer.write(lambda db: None)
    writer.hold_loop_still = True
    await writer.append([event("held")])
    writer.hold_loop_still = False
    await writer.append([event("small")])
    assert traced.inserts_by() == ["thread", "thread", "loop"]


async def test_a_slow_commit_from_the_loop_s_thread_sends_the_next_ones_to_the_writer_thread(
    traced: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit from the loop's thread that took longer than INLINE_SLOW_SECS (a slow disk)
    sends the commits of the next INLINE_PAUSE_SECS to the writer thread, then they come back."""
    monkeypatch.setattr(writer_module, "INLINE_SLOW_SECS", 0.0)  # every commit is "slow"
    monkeypatch.setattr(writer_module, "INLINE_PAUSE_SECS", 0.3)
    await traced.writer.append([event("a")])
    await traced.writer.append([event("b")])
    await asyncio.sleep(0.35)
    await traced.writer.append([event("c")])
    assert traced.inserts_by() == ["loop", "thread", "loop"]


async def test_a_group_s_callers_resume_before_the_next_commit_is_answered(
    traced: Traced,
) -> None:
    """A commit from the loop's thread right after one from the writer thread still lets the
    first one's callers resume before its own outcome is applied (Admission.refresh relies on
    it: a count taken inside a commit is set before any later commit adds to it)."""
    writer, loop = traced.writer, asyncio.get_running_loop()
    gate = asyncio.Event()
    order: list[str] = []
    writer.on_commit = lambda added: order.append("appended")

    def slow(db: sqlite3.Connection) -> None:  # holds the writer thread until the gate opens
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()

    async def counting() -> None:
        await writer.write(slow)
        order.append("resumed")

    first = asyncio.create_task(counting())
    await asyncio.sleep(0.05)
    appended = asyncio.create_task(writer.append([event("a")]))  # queued behind the write
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, appended), 5)
    assert order == ["resumed", "appended"]
    assert traced.inserts_by() == ["loop"]


async def test_appends_queued_while_the_writer_thread_awaits_the_lock_join_its_commit(
    tmp_path: Path,
) -> None:
    """A commit waiting in the writer thread for another process's turn takes the appends
    queued meanwhile into the same INSERT once the lock is its own (fewer, fuller turns), up
    to a job with a write, which keeps its place for the next commit."""
    traced = await open_traced(tmp_path / "o.db", shared=True)
    writer = traced.writer
    with another_process_s_turn(writer):
        first = asyncio.create_task(writer.append([event("a")]))
        await asyncio.sleep(0.05)  # the writer thread waits for the lock with a alone
        later = [asyncio.create_task(writer.append([event(e)])) for e in ("b", "c")]
        written = asyncio.create_task(writer.write(lambda db: None))
        last = asyncio.create_task(writer.append([event("d")]))
        await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(first, *later, written, last), 5)
    await writer.close()
    carried = [
        sorted({e for e in "abcd" if f"'{e}'" in statement})
        for _, statement in traced.statements
        if statement.startswith("INSERT")
    ]
    assert carried == [["a", "b", "c"], ["d"]]  # then the write's commit, with d
    assert traced.inserts_by() == ["thread", "thread"]
    assert stored(writer.path) == ["a", "b", "c", "d"]
