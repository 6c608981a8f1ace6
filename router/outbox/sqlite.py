"""The embedded outbox: SQLite WAL, one group-committing writer, a cursor per destination."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import aiosqlite
import structlog

from router.clock import Clock, SystemClock
from router.destination import Outcome
from router.outbox.attempts_log import INSERT_ATTEMPT, Sends
from router.outbox.base import (
    Claim,
    Claimed,
    NewEvent,
    OutboxUnavailable,
)
from router.outbox.checkpointer import Checkpointer
from router.outbox.clockwatch import WallClockWatch
from router.outbox.erasure import ErasureOperations
from router.outbox.insight import Insight
from router.outbox.lanes import Lane, Wakeups, claim_in_turn
from router.outbox.persons import PersonIndex
from router.outbox.policy import RetryPolicy
from router.outbox.replays import ReplayOperations
from router.outbox.retention import RetentionOperations
from router.outbox.room import Admission, DiskFloor, FreeBytes, statvfs_free
from router.outbox.settling import plan
from router.outbox.writer import GroupWriter

log = structlog.get_logger("tagless.outbox")

_UPSERT_DELIVERY: Final = (
    "INSERT INTO deliveries (store, destination, seq, state, attempts, first_attempt_at, due_at,"
    " reason, last_status, detail, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (store, destination, seq) DO UPDATE SET state = excluded.state,"
    " attempts = excluded.attempts, due_at = excluded.due_at, reason = excluded.reason,"
    " last_status = excluded.last_status, detail = excluded.detail,"
    " updated_at = excluded.updated_at"
)
_DELETE_DELIVERY: Final = "DELETE FROM deliveries WHERE store = ? AND destination = ? AND seq = ?"
_SAVE_CURSOR: Final = (
    "INSERT INTO cursors (store, destination, seq) VALUES (?, ?, ?)"
    " ON CONFLICT (store, destination) DO UPDATE SET seq = max(seq, excluded.seq)"
)
# Both walk the log from a position (a rowid range): ``+store`` keeps SQLite from choosing the
# (store, event_id) index instead, which read and sorted every event of the store on each
# claim (measured: 57% of the process while a backlog drained, slower as the log grew).
_NEXT_EVENTS: Final = (
    "SELECT seq, event_id, received_at, routes, body FROM events"
    " WHERE seq > ? AND +store = ? ORDER BY seq LIMIT ?"
)
#: Rows read at a time once a claim's first read (its ``limit`` rows: every row is routed to
#: the lane when all events go everywhere) found fewer routed to the lane than it takes.
_SPARSE_WINDOW: Final = 256


class SqliteOutbox(Wakeups, ReplayOperations, ErasureOperations, RetentionOperations):
    """The :class:`~router.outbox.base.Outbox` on an embedded SQLite file.

    Every write goes through one :class:`GroupWriter`: appends and settlements queued while
    the previous commit ran are committed together in one ``BEGIN IMMEDIATE`` transaction and
    one fsync (group commit). Reads use a second connection and never block the writer.

    An append is refused (:class:`OutboxFull`) while the store already has
    ``max_pending_events`` undelivered events, and (:class:`OutboxLowOnDisk`) while the
    outbox's filesystem has less than ``min_free_disk_mb`` free.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock | None = None,
        synchronous: Literal["full", "normal"] = "full",
        max_pending_events: int = 200_000,
        min_free_disk_mb: int = 256,
        free_bytes: FreeBytes = statvfs_free,
        lease_secs: float = 60.0,
        shared: bool = False,
    ) -> None:
        self.path = Path(path)
        self.clock = clock or SystemClock()
        self.lease_secs = lease_secs
        self.writer = GroupWriter(self.path, synchronous=synchronous.upper(), shared=shared)
        #: Checkpoints the WAL off the commits' path (router/outbox/checkpointer.py).
        self.checkpointer = Checkpointer(self.path, synchronous=synchronous.upper())
        self.writer.on_commit = self.committed
        disk = DiskFloor(
            self.path.parent, min_free_disk_mb << 20, self.clock, free_bytes=free_bytes
        )
        self.room = Admission(self.writer, self.clock, max_pending_events, disk, path=self.path)
        self.backlog = self.room.backlog
        self._reader_db: aiosqlite.Connection | None = None
        self._signals: dict[str, list[asyncio.Event]] = {}
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._tokens = itertools.count(1)
        self._wall = WallClockWatch()
        #: Identity stitching's look-up index, a side file filled after the commit.
        self.persons = PersonIndex(self.path)
        #: The admin pages' read-only queries.
        self.insight = Insight(self.path, self.persons)

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the writer (which brings the schema up to date and refuses a file whose
        cursors are ahead of its event log: :class:`OutboxStateError`), then the reader."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self.writer.open(now=self.clock.now())
        reader = await aiosqlite.connect(self.path, isolation_level=None)
        await reader.execute("PRAGMA busy_timeout=5000")
        await reader.execute("PRAGMA query_only=1")
        self._reader_db = reader
        self.checkpointer.start()  # last: an open that failed leaves no thread behind

    async def close(self) -> None:
        """Commit what is queued, checkpoint the WAL and close."""
        await asyncio.to_thread(self.checkpointer.stop)
        await self.writer.close()
        await self.insight.close()
        await self.persons.close()
        if self._reader_db is not None:
            await self._reader_db.close()
            self._reader_db = None

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Store events durably; return after their commit (see :class:`Outbox`)."""
        if events:
            self.room.check(events)
        await self.writer.append(events)

    # -- claiming ----------------------------------------------------------------------------

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        if self._reader_db is None:
            raise OutboxUnavailable("the outbox is closed")
        return list(await self._reader_db.execute_fetchall(sql, params))

    async def _lane(self, store: str, destination: str) -> Lane:
        lane = self._lanes.get((store, destination))
        if lane is None:
            found = await self._read(
                "SELECT seq FROM cursors WHERE store = ? AND destination = ?", (store, destination)
            )
            start = found[0][0] if found else 0
            lane = self._lanes.setdefault((store, destination), Lane(cursor=start, read_pos=start))
        return lane

    def forget_lane(self, store: str, destination: str) -> None:
        """Drop the lane's in-memory state once its dispatcher has stopped (a reload): the
        next claim starts again from the durable cursor, as a restart would."""
        self._lanes.pop((store, destination), None)

    async def claim(self, store: str, destination: str, limit: int) -> Claim | None:
        """Claim due retries or the next routed events after the lane's position, in turn."""
        lane = await self._lane(store, destination)
        return await claim_in_turn(
            lane,
            lambda: self._claim_new(lane, store, destination, limit),
            lambda: self._claim_retries(store, destination, limit),
        )

    async def _claim_retries(self, store: str, destination: str, limit: int) -> Claim | None:
        now = self.clock.now()
        await self._follow_clock_back(now)

        def lease(db: sqlite3.Connection) -> list[tuple[int, int, float]]:
            cursor = db.execute(
                "UPDATE deliveries SET due_at = ? WHERE store = ? AND destination = ?"
                " AND state = 'retry' AND seq IN (SELECT seq FROM deliveries WHERE store = ?"
                " AND destination = ? AND state = 'retry' AND due_at <= ? ORDER BY due_at LIMIT ?)"
                " RETURNING seq, attempts, first_attempt_at",
                (now + self.lease_secs, store, destination, store, destination, now, limit),
            )
            return [tuple(row) for row in cursor.fetchall()]

        due = await self._read(
            "SELECT 1 FROM deliveries WHERE store = ? AND destination = ? AND state = 'retry'"
            " AND due_at <= ? LIMIT 1",
            (store, destination, now),
        )
        if not due:
            return None
        claimed: list[tuple[int, int, float]] = await self.writer.write(lease)
        if not claimed:
            return None
        meta = {seq: (attempts, first) for seq, attempts, first in claimed}
        marks = ",".join("?" * len(meta))
        rows = await self._read(
            f"SELECT seq, event_id, received_at, body, routes FROM events WHERE seq IN ({marks})"  # noqa: S608 - placeholders only
            " ORDER BY seq",
            list(meta),
        )
        marked = f" {destination}! "
        items = tuple(
            Claimed(seq, event_id, received_at, body, *meta[seq], marked in routes)
            for seq, event_id, received_at, body, routes in rows
        )
        return Claim(store, destination, items, next(self._tokens), is_retry=True)

    async def _claim_new(
        self, lane: Lane, store: str, destination: str, limit: int
    ) -> Claim | None:
        plain, marked = f" {destination} ", f" {destination}! "
        items: list[Claimed] = []
        hi = lane.read_pos
        window = limit
        while len(items) < limit:
            rows = await self._read(_NEXT_EVENTS, (hi, store, window))
            for seq, event_id, received_at, routes, body in rows:
                hi = seq
                if plain in routes:
                    items.append(Claimed(seq, event_id, received_at, body))
                elif marked in routes:
                    items.append(Claimed(seq, event_id, received_at, body, without_user_data=True))
                else:
                    continue
                if len(items) == limit:
                    break
            if len(rows) < window:  # the end of the log
                break
            window = max(limit, _SPARSE_WINDOW)  # few routed here: read further at a time
        if hi == lane.read_pos:
            return None
        token = next(self._tokens)
        lane.hand_out(token, hi, len(items))
        return Claim(store, destination, tuple(items), token, is_retry=False)

    async def _follow_clock_back(self, now: float) -> None:
        """Move the waiting retries (and leases) of the destinations this process delivers
        back by as much as the wall clock went back: due times are wall times (they outlive
        the process), and a retry due in ten seconds would otherwise wait the jump out too. A
        clock set forward makes retries due early. Only this process's lanes: every delivery
        process sharing the file sees the same jump and moves its own, so none moves twice.
        Called wherever a due time is taken from the clock, so that the latest time seen is
        the one the latest due time was counted from."""
        back = self._wall.went_back(now)
        if not back:
            return
        rows = [(back, store, destination, now) for store, destination in self._lanes]
        log.warning("wall_clock_went_back", seconds=round(back, 3))

        def shift(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE deliveries SET due_at = due_at - ? WHERE store = ? AND destination = ?"
                " AND state = 'retry' AND due_at > ?",
                rows,
            )

        if rows:
            await self._wall.follow(now, back, self.writer.write(shift))

    # -- settling ----------------------------------------------------------------------------

    async def settle(
        self,
        claim: Claim,
        outcomes: Sequence[tuple[Claimed, Outcome]],
        policy: RetryPolicy,
        *,
        sends: Sends | None = None,
    ) -> list[str]:
        """Record every event's outcome, the attempts log's rows and the cursor, in one
        transaction."""
        now = self.clock.now()
        await self._follow_clock_back(now)  # every time a due time is taken from is seen
        planned = plan(claim, outcomes, policy, sends, now)
        upserts, deletes, attempts = planned.upserts, planned.deletes, planned.attempts
        cursor, passed = None, 0
        if not claim.is_retry:
            lane = await self._lane(claim.store, claim.destination)
            cursor, passed = lane.settle(claim.token)

        def record(db: sqlite3.Connection) -> None:
            if upserts:
                db.executemany(_UPSERT_DELIVERY, upserts)
            if attempts:
                db.executemany(INSERT_ATTEMPT, attempts)
            if deletes:
                db.executemany(_DELETE_DELIVERY, deletes)
            if cursor is not None:
                db.execute(_SAVE_CURSOR, (claim.store, claim.destination, cursor))

        if upserts or deletes or attempts or cursor is not None:
            await self.writer.write(record)
        # right after the commit, before a later commit is answered (see Admission.refresh)
        retrying = planned.retrying_change(claim.is_retry)
        self.backlog.settled(claim.store, claim.destination, passed=passed, retrying=retrying)
        return planned.states

    async def release(self, claim: Claim) -> None:
        """Give a claim back unsent: retries fall due now; new events wait for the next start."""
        if not claim.is_retry:
            (await self._lane(claim.store, claim.destination)).release()
            return
        now = self.clock.now()
        await self._follow_clock_back(now)
        rows = [(now, claim.store, claim.destination, item.seq) for item in claim.items]

        def unlease(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE deliveries SET due_at = ? WHERE store = ? AND destination = ? AND seq = ?",
                rows,
            )

        with contextlib.suppress(OutboxUnavailable):
            await self.writer.write(unlease)

    # -- reading state -----------------------------------------------------------------------

    async def next_due(self, store: str, destination: str) -> float | None:
        """When the earliest retry of ``destination`` falls due, if any."""
        rows = await self._read(
            "SELECT min(due_at) FROM deliveries WHERE store = ? AND destination = ?"
            " AND state = 'retry'",
            (store, destination),
        )
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    async def refresh_backlog(self, store: str, destinations: Sequence[str]) -> None:
        """Count each destination's undelivered events afresh (see :class:`Admission`)."""
        await self.room.refresh(store, destinations)

    async def index_persons(self) -> int:
        """Index the events committed since the last time for stitching's look-up (the main
        process, every second); return how many events were read."""
        return await self.persons.catch_up()

    async def unready(self, stores: Iterable[str]) -> str | None:
        """Why ingest cannot commit now (a short code), or None (see :class:`Admission`)."""
        return await self.room.unready(stores)
