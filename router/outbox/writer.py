"""The outbox's single writer: one thread, one connection, one transaction per group commit."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fcntl
import functools
import operator
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any, Final

import attrs
import structlog

from router.outbox.base import NewEvent, OutboxUnavailable
from router.outbox.checkpointer import WRITER_AUTOCHECKPOINT_PAGES
from router.outbox.schema import prepare

log = structlog.get_logger("tagless.outbox")

#: Values an event row of the INSERT takes.
_COLUMNS: Final = 7
#: How long the writer waits for a lock another connection holds (a CLI command's write).
BUSY_TIMEOUT_MS: Final = 5000
#: Rows per commit at most: 7 parameters a row stays below SQLite's 32,766 per statement.
MAX_ROWS_PER_COMMIT: Final = 4_500


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
    """One multi-row INSERT for exactly ``rows`` rows (one of ``_ROW_COUNTS``)."""
    return (
        "INSERT OR IGNORE INTO events (store, event_id, received_at, routes, body,"  # noqa: S608 - placeholders only
        " anonymous_id, user_id) VALUES " + ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    )


#: How long a turn at the writers' lock waits for the event loop to hold still, and the
#: longest the loop is held (see GroupWriter._loop_held_still).
HOLD_STILL_WAIT_SECS: Final = 1.0
HOLD_STILL_MAX_SECS: Final = 1.0

#: Rows a group of appends may hold to be committed from the event loop's thread (see
#: GroupWriter._commit_inline); larger groups go to the writer thread. Measured here: 1,000
#: rows of 600-byte events commit in 3.1 ms (median), 100 in 0.6 ms, fsync included.
INLINE_MAX_ROWS: Final = 1_000
#: A commit from the event loop's thread that took longer than this (a slow disk's fsync, a
#: large WAL) sends the commits of the next ``INLINE_PAUSE_SECS`` to the writer thread, so
#: that the loop goes on reading requests while they run.
INLINE_SLOW_SECS: Final = 0.010
INLINE_PAUSE_SECS: Final = 1.0

#: A write run inside the next group commit, in the writer thread, on its connection.
Write = Callable[[sqlite3.Connection], Any]
#: Events a commit stored, counted by (store, routes): a known event_id stores nothing.
Added = Counter[tuple[str, tuple[str, ...]]]
#: (store, routes) of a NewEvent; measured 40% faster than a generator reading attributes.
_STORE_AND_ROUTES: Final = operator.itemgetter(0, 3)


@attrs.define
class _Job:
    future: asyncio.Future[Any]
    events: Sequence[NewEvent] = ()
    write: Write | None = None


@functools.lru_cache(maxsize=1024)
def routes_text(routes: tuple[str, ...]) -> str:
    """The stored form of a route list: space-separated and space-padded for a cheap test."""
    return f" {' '.join(routes)} "


class GroupWriter:
    """Commits appends and writes queued while the previous commit ran, all in one go.

    The whole transaction (``BEGIN IMMEDIATE``, the inserts, every queued write, ``COMMIT``)
    runs in the writer thread as one call: the event loop is involved once per commit, not
    once per statement, so a busy loop does not stretch commits (measured: a 3-4-await commit
    through aiosqlite took 15 ms for 32 rows under load). A group of appends only, the usual
    one, is a single INSERT, which SQLite commits as its own transaction: see :meth:`_commit`.
    A small one is committed by the event loop's thread itself when no lock is in the way
    (:meth:`_commit_inline`); groups are committed one after the other either way.
    """

    def __init__(self, path: Path, *, synchronous: str, shared: bool = False) -> None:
        self.path = path
        self.synchronous = synchronous
        #: Other processes write too (ingest processes): each transaction first takes an
        #: exclusive lock on a file beside the database (see :func:`writers_lock`).
        self.lock_path = writers_lock(path) if shared else None
        self._lock_fd: int | None = None
        self.max_rows_per_commit = MAX_ROWS_PER_COMMIT
        #: No stored event has a higher seq (the writer thread's; set by :meth:`open`): rows
        #: above it after an INSERT are that INSERT's.
        self.high_seq = 0
        #: Why the last commit failed, until one succeeds.
        self.failure: str | None = None
        self._db: sqlite3.Connection | None = None
        # one thread: every statement on the connection, in submission order
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-writer")
        self._jobs: deque[_Job] = deque()
        self._queued_events = 0
        self._unfinished = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.on_commit: Callable[[Added], None] = lambda added: None
        #: Hold the event loop's thread still during each turn at the writers' lock (the
        #: delivering process, whose loop runs at a lower priority: see :meth:`_loop_held_still`).
        self.hold_loop_still = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Held while a thread uses the connection outside the writer thread's turn order:
        #: a commit from the event loop's thread, a call between commits in the writer thread.
        self._connection = threading.Lock()
        #: No commit from the event loop's thread before this time.monotonic().
        self._inline_after = 0.0

    @property
    def is_open(self) -> bool:
        return self._task is not None and not self._closing

    @property
    def unfinished(self) -> int:
        """Jobs submitted whose commit has not been answered yet."""
        return self._unfinished

    @property
    def queued_events(self) -> int:
        """Events appended whose commit has not been answered yet."""
        return self._queued_events

    async def open(self, *, now: float) -> None:
        """Open the connection in the writer thread, bring the schema up to date and check
        the file (see :func:`router.outbox.schema.prepare`); on failure the writer is done."""
        loop = self._loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._connect, now)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        self._task = asyncio.create_task(self._run(), name="outbox-writer")

    def _connect(self, now: float) -> None:
        db = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=_CACHED_STATEMENTS,
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # commits leave checkpoints to router/outbox/checkpointer.py, but for a backstop
            db.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
            if self.lock_path is not None:
                self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            with self._turn():
                self.high_seq = prepare(db, path=self.path, now=now)
        except BaseException:
            db.close()
            self._unlock_file()
            raise
        self._db = db

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn to write, among the processes sharing the file.

        SQLite lets one writer in at a time and makes the others poll: a writer that finds the
        lock taken sleeps 1, 2, 5, 10... up to 100 ms between tries, which costs a waiting
        ingest request far more than the commit it waits for. ``flock`` queues the waiters in
        the kernel instead and wakes the next one as soon as the lock is free.
        """
        if self._lock_fd is None:
            yield
            return
        with self._loop_held_still():
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                self._end_turn()

    @contextlib.contextmanager
    def _loop_held_still(self) -> Iterator[None]:
        """With ``hold_loop_still``: the event loop's thread waits, the GIL let go, until this
        turn ends.

        The delivering process runs its event loop at a lower CPU priority
        (``server.delivery_nice``, ``server.delivery_idle``), and every statement of a commit
        needs the GIL back from whichever thread holds it: a commit holding the writers' lock
        could wait for the loop's thread to be scheduled again, and every ingest process with
        it (measured: the delivering process's turns held the lock 20 ms at p99 against 5 ms
        for an ingest process's). Held still first, the loop cannot hold the GIL meanwhile.

        The wait for the loop comes before the lock, so it costs the other processes nothing,
        and it is long: an idle-class loop may not run at all while ingest keeps the cores
        busy, and a turn that gave up after 50 ms took the lock anyway and held it up to
        350 ms, waiting for that loop's GIL (measured: batches paced at half of saturation,
        six runs each, ack p99 11-345 ms, median 26, against 10-19 ms, median 15, waiting up
        to a second). Only a loop that does not come within ``HOLD_STILL_WAIT_SECS`` (stuck
        in one step) is not waited for, and a held loop is let go after
        ``HOLD_STILL_MAX_SECS`` whatever happens.
        """
        loop = self._loop
        if not self.hold_loop_still or loop is None or loop.is_closed():
            yield
            return
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            held.set()
            done.wait(HOLD_STILL_MAX_SECS)

        try:
            loop.call_soon_threadsafe(hold)
        except RuntimeError:  # the loop closed meanwhile
            yield
            return
        held.wait(HOLD_STILL_WAIT_SECS)
        try:
            yield
        finally:
            done.set()

    def _unlock_file(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def close(self) -> None:
        """Commit what is queued, truncate the WAL and close."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=True)

    def _disconnect(self) -> None:
        assert self._db is not None
        with contextlib.suppress(sqlite3.Error), self._turn():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        self._unlock_file()

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Queue events for the next commit and wait for it."""
        if not self.is_open:
            raise OutboxUnavailable("the outbox is closed")
        self._queued_events += len(events)
        await self._submit(_Job(asyncio.get_running_loop().create_future(), events=events))

    @property
    def _running(self) -> bool:
        # done() as well: between the run loop's return and close() resuming, a queued job
        # would never be committed, and its caller would wait forever
        return self._task is not None and not self._task.done()

    async def write(self, write: Write) -> Any:
        """Run ``write`` inside the next commit; return what it returned."""
        if not self._running:
            raise OutboxUnavailable("the outbox is closed")
        return await self._submit(_Job(asyncio.get_running_loop().create_future(), write=write))

    async def outside_transaction(self, call: Write) -> Any:
        """Run ``call`` between commits (checkpoints cannot run inside a transaction)."""
        if not self._running:
            raise OutboxUnavailable("the outbox is closed")
        assert self._db is not None
        db = self._db

        def in_turn() -> Any:
            with self._connection, self._turn():
                return call(db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, in_turn)

    async def _submit(self, job: _Job) -> Any:
        self._unfinished += 1
        self._jobs.append(job)
        self._wake.set()
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._jobs:
                group = self._take_group()
                results = self._commit_inline(group)
                if results is None:
                    results = await loop.run_in_executor(self._executor, self._commit, group)
                self._finish(group, results)
                if self._jobs:  # the group's callers resume before the next commit is
                    # answered, even one from the loop's thread (Admission.refresh applies
                    # its count in between)
                    await asyncio.sleep(0)
            if self._closing and not self._jobs:
                return

    def _take_group(self) -> list[_Job]:
        group: list[_Job] = []
        self._take_more(group, self.max_rows_per_commit)
        return group

    def _take_more(self, group: list[_Job], cap: int, *, appends_only: bool = False) -> None:
        """Move queued jobs into ``group``, in order, while its rows stay within ``cap`` (an
        empty group takes one job whatever its size); with ``appends_only``, stop at the first
        job with a write."""
        rows = sum(len(job.events) for job in group)
        jobs = self._jobs
        while jobs and (not group or rows + len(jobs[0].events) <= cap):
            if appends_only and jobs[0].write is not None:
                break
            job = jobs.popleft()
            rows += len(job.events)
            group.append(job)

    def _commit_inline(self, group: list[_Job]) -> tuple[list[Any], Added] | Exception | None:
        """A small group of appends committed right here, in the event loop's thread, if the
        writers' lock and SQLite's are free this instant; None if it must go to the writer
        thread (it waits for them there).

        Handing a commit to the writer thread and back costs two thread wake-ups and a GIL
        hand-over per SQLite step, each of which waits for a CPU when delivery keeps both
        cores busy; here the loop holds the GIL throughout and is blocked only for the INSERT
        and its fsync (measured while delivering to five platforms, five alternating pairs of
        runs: single events 1.11-1.41x the requests/s, batches at saturation unchanged).
        Never in a loop that runs at a lowered priority (``hold_loop_still``): its commits
        would hold the writers' lock at that priority. A lock held elsewhere (another
        process's turn, a command writing without the writers' lock) is never waited for
        here: SQLite answers busy at once.
        """
        if self.hold_loop_still or any(job.write is not None for job in group):
            return None
        started = time.monotonic()
        if started < self._inline_after or sum(len(j.events) for j in group) > INLINE_MAX_ROWS:
            return None
        db = self._db
        assert db is not None
        if not self._connection.acquire(blocking=False):  # a checkpoint or vacuum is running
            return None
        try:
            if not self._try_turn():
                return None
            try:
                db.execute("PRAGMA busy_timeout=0")
                return self._appended(db, group, _values(group))
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return None  # nothing was written: the writer thread waits its turn
                return _failure(error)
            except Exception as error:  # as in _commit_appends
                return _failure(error)
            finally:
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                self._end_turn()
        finally:
            self._connection.release()
            if time.monotonic() - started > INLINE_SLOW_SECS:
                self._inline_after = time.monotonic() + INLINE_PAUSE_SECS

    def _try_turn(self) -> bool:
        """Take the writers' lock if no other process holds it (always, if none is shared)."""
        if self._lock_fd is None:
            return True
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _end_turn(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _commit(self, group: list[_Job]) -> tuple[list[Any], Added] | Exception:
        """In the writer thread: the whole group in one transaction, or none of it."""
        db = self._db
        assert db is not None
        values = _values(group)
        if len(values) <= MAX_ROWS_PER_COMMIT * _COLUMNS and not any(j.write for j in group):
            return self._commit_appends(db, group, values)
        with self._turn():
            try:
                db.execute("BEGIN IMMEDIATE")
                added, high = self._insert(db, group, values)
                results = [job.write(db) if job.write is not None else None for job in group]
                db.execute("COMMIT")
            except Exception as error:  # a database error, or a bug in a write: nothing kept
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                return _failure(error)
        self.high_seq = high
        return results, added

    def _commit_appends(
        self, db: sqlite3.Connection, group: list[_Job], values: list[Any]
    ) -> tuple[list[Any], Added] | Exception:
        """A group of appends only, in one statement: an INSERT outside ``BEGIN`` is its own
        transaction, all its rows or none, taking the write lock as ``BEGIN IMMEDIATE`` does.

        Every statement lets go of the GIL and must get it back from the busy event loop while
        this process holds the writers' lock, which every other process is waiting for: one
        statement instead of three (BEGIN, INSERT, COMMIT) is two such waits fewer per commit
        (measured, single events paced at 3,000 requests/s on two ingest processes: ack
        latency p50 5.8 -> 4.3 ms, p99 24.9 -> 18.9 ms, means of four runs).
        """
        with self._turn():
            # what was queued while the turn was awaited joins this commit: the fewer commits
            # processes sharing the lock take turns for, the more events each one carries.
            # Only this thread takes jobs while the loop awaits it (deque operations are atomic)
            start = len(group)
            cap = min(self.max_rows_per_commit, MAX_ROWS_PER_COMMIT)
            self._take_more(group, cap, appends_only=True)
            if len(group) > start:
                values = values + _values(group[start:])
            try:
                return self._appended(db, group, values)
            except Exception as error:  # nothing kept (the statement undid itself), or stored
                # but not counted (the count after it failed): the sender retries, and a
                # known event_id stores nothing twice
                return _failure(error)

    def _appended(
        self, db: sqlite3.Connection, group: list[_Job], values: list[Any]
    ) -> tuple[list[Any], Added]:
        """Insert a group of appends (in its own transaction); what each job answers, and
        what was stored."""
        added, self.high_seq = self._insert(db, group, values)
        return [None] * len(group), added

    def _insert(
        self, db: sqlite3.Connection, group: list[_Job], values: list[Any]
    ) -> tuple[Added, int]:
        """Insert the group's events; return what was stored and the new highest seq."""
        rows = len(values) // _COLUMNS
        stored, last_seq = _insert_events(db, values)
        if stored == rows:  # the usual case: every event was new
            added = Counter(map(_STORE_AND_ROUTES, chain.from_iterable(j.events for j in group)))
        elif not stored:  # every event was known (a client's retry): nothing to count
            added = Counter()
        else:  # some were known: count what the INSERT kept, the transaction's last
            # ``stored`` seqs (consecutive: SQLite gives each new row the highest seq + 1, and no
            # other writer, such as another ingest process, commits inside this statement)
            added = Counter()
            for store, routes, count in db.execute(
                "SELECT store, routes, count(*) FROM events WHERE seq BETWEEN ? AND ?"
                " GROUP BY store, routes",
                (last_seq - stored + 1, last_seq),
            ):
                added[(store, tuple(routes.split()))] = count
        return added, last_seq if stored else self.high_seq

    def _finish(self, group: list[_Job], outcome: tuple[list[Any], Added] | Exception) -> None:
        if isinstance(outcome, Exception):
            self.failure = str(outcome)
            log.error("outbox_commit_failed", error=str(outcome), jobs=len(group))
        else:
            self.failure = None
        self._unfinished -= len(group)
        for index, job in enumerate(group):
            self._queued_events -= len(job.events)
            if job.future.done():
                continue
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome[0][index])
        # before any caller of this group resumes: a count taken inside this commit
        # (Admission.refresh) already includes these events and is applied after them
        if not isinstance(outcome, Exception) and outcome[1]:
            self.on_commit(outcome[1])


def _values(group: list[_Job]) -> list[Any]:
    """The group's events as the INSERT's flattened parameters (``_COLUMNS`` a row)."""
    return [
        value
        for job in group
        for e in job.events
        for value in (
            e.store,
            e.event_id,
            e.received_at,
            routes_text(e.routes),
            e.body,
            e.anonymous_id,
            e.user_id,
        )
    ]


def _failure(error: Exception) -> Exception:
    """What a failed commit answers: a database error as the outbox being unavailable."""
    if isinstance(error, sqlite3.Error):
        return OutboxUnavailable(f"the outbox refused the write: {error}")
    return error


def writers_lock(path: Path) -> Path:
    """The file whose ``flock`` the processes writing the outbox at ``path`` take in turn."""
    return path.with_name(path.name + "-writers.lock")


def _insert_events(db: sqlite3.Connection, values: list[Any]) -> tuple[int, int]:
    """Insert the flattened rows (``_COLUMNS`` values each), one statement per
    ``MAX_ROWS_PER_COMMIT`` rows (a single request may hold more: ``max_batch_events`` is the
    operator's); return how many were stored (a known event_id is not) and the last seq stored."""
    step = MAX_ROWS_PER_COMMIT * _COLUMNS
    if len(values) <= step:  # the usual case: no copy
        return _insert_rows(db, values)
    stored, last = 0, 0
    for start in range(0, len(values), step):
        count, seq = _insert_rows(db, values[start : start + step])
        stored, last = stored + count, seq or last
    return stored, last


def _insert_rows(db: sqlite3.Connection, values: list[Any]) -> tuple[int, int]:
    """At most ``MAX_ROWS_PER_COMMIT`` flattened rows with one prepared statement."""
    if not values:
        return 0, 0
    rows = len(values) // _COLUMNS
    size = _ROW_COUNTS[bisect.bisect_left(_ROW_COUNTS, rows)]
    if size > rows:
        values += values[-_COLUMNS:] * (size - rows)
    cursor = db.execute(_insert_sql(size), values)
    # an INSERT that stored nothing leaves lastrowid at this connection's previous insert
    return cursor.rowcount, (cursor.lastrowid or 0) if cursor.rowcount else 0
