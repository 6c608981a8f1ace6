"""The outbox's single writer: one thread, one connection, one transaction per group commit."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import attrs
import structlog

from router.outbox.base import NewEvent, OutboxFull, OutboxUnavailable

log = structlog.get_logger("tagless.outbox")

#: Rows per commit at most: 5 parameters a row stays below SQLite's 32,766 per statement.
MAX_ROWS_PER_COMMIT: Final = 6_000


def _row_counts(top: int, factor: float) -> tuple[int, ...]:
    """1, 2, 3, ... growing by ``factor`` up to ``top``: the row counts INSERTs exist for."""
    counts, size = [1], 1.0
    while counts[-1] < top:
        size *= factor
        counts.append(min(top, max(counts[-1] + 1, int(size))))
    return tuple(counts)


#: A commit inserts all its rows with one statement, prepared for the next row count up (the
#: last row repeats to fill it; INSERT OR IGNORE drops the repeats): at most a quarter more
#: rows, ~40 statements kept prepared. sqlite3 releases the GIL around every statement step,
#: and getting it back from a busy event loop costs up to a switch interval, so one statement
#: per commit matters (measured under batch load: fixed 512/64/8/1-row chunks meant ~25 steps
#: and 200 ms per 3,000-row commit, of which 45 ms was work). One statement per exact row
#: count instead grew memory by ~1.4 MB per cached 2,000-row statement, up to 128 of them.
_ROW_COUNTS: Final = _row_counts(MAX_ROWS_PER_COMMIT, 1.25)
_CACHED_STATEMENTS: Final = len(_ROW_COUNTS) + 32


@functools.lru_cache(maxsize=len(_ROW_COUNTS))
def _insert_sql(rows: int) -> str:
    return (
        "INSERT OR IGNORE INTO events (store, event_id, received_at, routes, body) VALUES "  # noqa: S608 - placeholders only
        + ",".join(["(?, ?, ?, ?, ?)"] * rows)
    )


#: A write run inside the next group commit, in the writer thread, on its connection.
Write = Callable[[sqlite3.Connection], Any]


@attrs.define
class _Job:
    future: asyncio.Future[Any]
    events: Sequence[NewEvent] = ()
    write: Write | None = None
    #: ``write`` runs alone, between transactions (a checkpoint cannot run inside one).
    outside: bool = False


#: Tells the writer thread to commit what is queued before it, then close and exit.
_STOP: Final = object()


@functools.lru_cache(maxsize=1024)
def routes_text(routes: tuple[str, ...]) -> str:
    """The stored form of a route list: space-separated and space-padded for a cheap test."""
    return f" {' '.join(routes)} "


class GroupWriter:
    """Commits appends and writes queued while the previous commit ran, all in one go.

    A dedicated thread owns the connection and loops on its own: it takes everything queued
    (up to ``max_rows_per_commit`` rows), runs the whole transaction (``BEGIN IMMEDIATE``, one
    INSERT, every queued write, ``COMMIT``), hands the results to the event loop and goes on
    with what queued meanwhile. The event loop is never on the commit path: measured with
    single events, waiting for a busy loop to pick up each commit's result before starting the
    next added 2-3 ms to every 3-5 ms commit cycle (and through aiosqlite, per statement,
    a 32-row commit took 15 ms).
    """

    def __init__(self, path: Path, *, synchronous: str, max_pending_events: int) -> None:
        self.path = path
        self.synchronous = synchronous
        self.max_pending_events = max_pending_events
        self.max_rows_per_commit = MAX_ROWS_PER_COMMIT
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._queued_events = 0
        self._unfinished = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closing = False
        self.on_commit: Callable[[set[str]], None] = lambda stores: None

    @property
    def is_open(self) -> bool:
        return self._thread is not None and not self._closing

    @property
    def unfinished(self) -> int:
        """Jobs submitted whose commit has not been answered yet."""
        return self._unfinished

    async def open(self) -> None:
        """Start the writer thread; it opens the connection and applies the schema."""
        self._loop = loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(opened,), name="outbox-writer", daemon=True
        )
        self._thread.start()
        try:
            await opened
        except BaseException:
            self._thread = None
            raise

    async def close(self) -> None:
        """Commit what is queued, truncate the WAL and close."""
        if self._thread is None or self._closing:
            return
        self._closing = True
        self._queue.put(_STOP)
        assert self._stopped is not None
        await self._stopped
        self._thread = None

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Queue events for the next commit and wait for it."""
        if not self.is_open:
            raise OutboxUnavailable("the outbox is closed")
        if self._queued_events + len(events) > self.max_pending_events:
            raise OutboxFull(f"{self._queued_events} events already wait for a commit")
        self._queued_events += len(events)
        await self._submit(_Job(asyncio.get_running_loop().create_future(), events=events))

    async def write(self, write: Write) -> Any:
        """Run ``write`` inside the next commit; return what it returned."""
        return await self._submit(_Job(asyncio.get_running_loop().create_future(), write=write))

    async def outside_transaction(self, call: Write) -> Any:
        """Run ``call`` between commits (checkpoints cannot run inside a transaction)."""
        future = asyncio.get_running_loop().create_future()
        return await self._submit(_Job(future, write=call, outside=True))

    async def _submit(self, job: _Job) -> Any:
        if not self.is_open:
            raise OutboxUnavailable("the outbox is closed")
        self._unfinished += 1
        self._queue.put(job)
        return await job.future

    # -- the writer thread -------------------------------------------------------------------

    def _run(self, opened: asyncio.Future[None]) -> None:
        try:
            db = self._connect()
        except BaseException as error:  # reported to open(); the thread ends here
            self._to_loop(_settle_future, opened, error)
            self._to_loop(_settle_future, self._stopped, None)
            return
        self._to_loop(_settle_future, opened, None)
        try:
            self._serve(db)
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            self._to_loop(_settle_future, self._stopped, None)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=_CACHED_STATEMENTS,
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(resources.files("router.outbox").joinpath("schema.sql").read_text())
        return db

    def _serve(self, db: sqlite3.Connection) -> None:
        """Commit groups until the stop marker; a job that does not fit waits for the next."""
        carry: _Job | object | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is _STOP:
                return
            assert isinstance(first, _Job)
            if first.outside:
                self._to_loop(self._finish, [first], self._alone(db, first))
                continue
            group, rows = [first], len(first.events)
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if (
                    not isinstance(job, _Job)  # the stop marker
                    or job.outside
                    or rows + len(job.events) > self.max_rows_per_commit
                ):
                    carry = job
                    break
                group.append(job)
                rows += len(job.events)
            self._to_loop(self._finish, group, _commit(db, group))

    def _alone(self, db: sqlite3.Connection, job: _Job) -> list[Any] | BaseException:
        assert job.write is not None
        try:
            return [job.write(db)]
        except Exception as error:
            return error

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(callback, *args)

    # -- back on the event loop --------------------------------------------------------------

    def _finish(self, group: list[_Job], results: list[Any] | BaseException) -> None:
        failed = isinstance(results, BaseException)
        if failed:
            log.error("outbox_commit_failed", error=str(results), jobs=len(group))
        stores: set[str] = set()
        self._unfinished -= len(group)
        for index, job in enumerate(group):
            self._queued_events -= len(job.events)
            stores.update(e.store for e in job.events)
            if job.future.done():
                continue
            if isinstance(results, BaseException):
                job.future.set_exception(results)
            else:
                job.future.set_result(results[index])
        if stores and not failed:
            self.on_commit(stores)


def _settle_future(future: asyncio.Future[None] | None, error: BaseException | None) -> None:
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _commit(db: sqlite3.Connection, group: list[_Job]) -> list[Any] | BaseException:
    """The whole group in one transaction, or none of it (in the writer thread)."""
    values = [
        value
        for job in group
        for e in job.events
        for value in (e.store, e.event_id, e.received_at, routes_text(e.routes), e.body)
    ]
    try:
        db.execute("BEGIN IMMEDIATE")
        _insert_events(db, values)
        results = [job.write(db) if job.write is not None else None for job in group]
        db.execute("COMMIT")
    except Exception as error:  # a database error, or a bug in a write: nothing is kept
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        if isinstance(error, sqlite3.Error):
            return OutboxUnavailable(f"the outbox refused the write: {error}")
        return error
    return results


def _insert_events(db: sqlite3.Connection, values: list[Any]) -> None:
    """Insert the flattened rows (5 values each) with one statement."""
    if not values:
        return
    rows = len(values) // 5
    size = _ROW_COUNTS[bisect.bisect_left(_ROW_COUNTS, rows)]
    if size > rows:
        values += values[-5:] * (size - rows)
    db.execute(_insert_sql(size), values)
