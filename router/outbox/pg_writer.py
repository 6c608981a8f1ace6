"""The PostgreSQL outbox's group commit: appends queued while the previous commit ran go in
one transaction, one round trip of rows and one WAL flush."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import asyncpg
import attrs
import structlog
from asyncpg.pool import PoolConnectionProxy

from router.outbox.base import NewEvent, OutboxUnavailable
from router.outbox.writer import Added, routes_text

log = structlog.get_logger("tagless.outbox")

#: A connection, or a pool's connection.
Db = asyncpg.Connection | PoolConnectionProxy

#: Every transaction that inserts events takes this transaction-scoped advisory lock first, so
#: on every node seqs become visible in order: a dispatcher that has read up to seq N never
#: later finds a committed event below N (its cursor would have passed it for good).
APPEND_LOCK: Final = 0x7461676C  # "tagl"
#: Channel of the wake-ups: the payload is the store whose events were committed or replayed.
CHANNEL: Final = "tagless_events"
#: Rows per commit at most (one INSERT of arrays: no parameter limit, but a bounded commit).
MAX_ROWS_PER_COMMIT: Final = 5_000

_INSERT: Final = (
    "INSERT INTO events (store, event_id, received_at, routes, body, anonymous_id, user_id)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::bytea[],"
    " $6::text[], $7::text[]) ON CONFLICT (store, event_id) DO NOTHING RETURNING store, routes"
)


async def lock_appends(db: Db) -> None:
    """Inside a transaction: wait for the cluster's append lock (see :data:`APPEND_LOCK`)."""
    await db.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)


async def insert_events(db: Db, events: Sequence[NewEvent]) -> Added:
    """Inside a transaction holding the append lock: insert ``events`` (a known event_id is
    ignored) and notify every node of their stores; return what was stored."""
    columns = (
        [e.store for e in events],
        [e.event_id for e in events],
        [e.received_at for e in events],
        [routes_text(e.routes) for e in events],
        [e.body for e in events],
        [e.anonymous_id for e in events],
        [e.user_id for e in events],
    )
    rows = await db.fetch(_INSERT, *columns)
    added: Added = Counter((row[0], tuple(row[1].split())) for row in rows)
    for store in {store for store, _ in added}:
        await db.execute("SELECT pg_notify($1, $2)", CHANNEL, store)
    return added


@attrs.define
class _Job:
    future: asyncio.Future[None]
    events: Sequence[NewEvent]


class PgGroupWriter:
    """Commits the appends queued while the previous commit ran, all in one transaction on
    one connection: a busy node pays one round trip and one flush for many requests."""

    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None
        self.max_rows_per_commit = MAX_ROWS_PER_COMMIT
        #: Why the last commit failed, until one succeeds.
        self.failure: str | None = None
        self._jobs: deque[_Job] = deque()
        self._queued_events = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.on_commit: Callable[[Added], None] = lambda added: None

    @property
    def is_open(self) -> bool:
        return self._task is not None and not self._closing

    @property
    def queued_events(self) -> int:
        """Events appended whose commit has not been answered yet."""
        return self._queued_events

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise OutboxUnavailable("the outbox is closed")
        return self._pool

    def start(self, pool: asyncpg.Pool) -> None:
        """Commit on ``pool`` from now on."""
        self._pool = pool
        self._task = asyncio.create_task(self._run(), name="outbox-pg-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Queue events for the next commit and wait for it."""
        if not self.is_open:
            raise OutboxUnavailable("the outbox is closed")
        self._queued_events += len(events)
        job = _Job(asyncio.get_running_loop().create_future(), events)
        self._jobs.append(job)
        self._wake.set()
        await job.future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._jobs:
                group = self._take_group()
                await self._commit(group)
            if self._closing and not self._jobs:
                return

    def _take_group(self) -> list[_Job]:
        group: list[_Job] = []
        rows = 0
        while self._jobs and (
            not group or rows + len(self._jobs[0].events) <= self.max_rows_per_commit
        ):
            job = self._jobs.popleft()
            rows += len(job.events)
            group.append(job)
        return group

    async def _commit(self, group: list[_Job]) -> None:
        events = [event for job in group for event in job.events]
        error: Exception | None = None
        added: Added = Counter()
        try:
            async with self.pool.acquire() as db, db.transaction():
                await lock_appends(db)
                added = await insert_events(db, events)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as failed:
            error = OutboxUnavailable(f"the outbox refused the write: {failed}")
        self.failure = None if error is None else str(error)
        if error is not None:
            log.error("outbox_commit_failed", error=str(error), jobs=len(group))
        for job in group:
            self._queued_events -= len(job.events)
            if job.future.done():
                continue
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(None)
        if added:
            self.on_commit(added)

    async def write(self, write: Callable[[Db], Awaitable[Any]]) -> Any:
        """Run ``write`` in a transaction of its own; return what it returned."""
        if self._task is None:
            raise OutboxUnavailable("the outbox is closed")
        try:
            async with self.pool.acquire() as db, db.transaction():
                return await write(db)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as failed:
            raise OutboxUnavailable(f"the outbox refused the write: {failed}") from failed

    async def vacuum(self, tables: Sequence[str]) -> None:
        """Rewrite ``tables`` (VACUUM FULL): no dead row version keeps what was overwritten."""
        async with self.pool.acquire() as db:
            for table in tables:
                await db.execute(f'VACUUM (FULL) "{table}"')

    async def probe(self) -> bool:
        """Whether a trivial transaction commits now (readiness after a failed commit)."""
        with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
            async with self.pool.acquire() as db:
                await db.execute("SELECT 1")
            self.failure = None
            return True
        return False
