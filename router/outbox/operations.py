"""The SQLite outbox's operations: status, dead letters, purges, person look-up."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from router.clock import Clock
from router.outbox.attempts_log import purge_attempts
from router.outbox.base import DeadLetter, LaneStatus, OutboxUnavailable
from router.outbox.lanes import Lane
from router.outbox.persons import PersonIndex
from router.outbox.recount import END, PENDING_BETWEEN
from router.outbox.room import Backlog
from router.outbox.writer import BUSY_TIMEOUT_MS, GroupWriter


class SqliteOperations:
    """The operator-facing half of :class:`~router.outbox.sqlite.SqliteOutbox` (its base):
    counts, dead letters, retention and WAL checkpoints (replays: ``router.outbox.replays``)."""

    writer: GroupWriter
    clock: Clock
    persons: PersonIndex
    backlog: Backlog

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    async def _lane(self, store: str, destination: str) -> Lane:
        raise NotImplementedError

    def _notify(self, store: str) -> None:
        raise NotImplementedError

    async def dead_letters(
        self, store: str, destination: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """The newest dead letters of a store, optionally of one destination."""
        rows = await self._read(
            "SELECT d.store, d.destination, d.seq, e.event_id, d.attempts, d.reason,"
            " d.last_status, d.detail, d.updated_at"
            " FROM deliveries d JOIN events e ON e.seq = d.seq"
            " WHERE d.store = ? AND d.state = 'dead' AND (? IS NULL OR d.destination = ?)"
            " ORDER BY d.updated_at DESC LIMIT ?",
            (store, destination, destination, limit),
        )
        return [DeadLetter(*row) for row in rows]

    async def status(self, store: str, destinations: Sequence[str]) -> list[LaneStatus]:
        """Pending, retrying and dead counts per destination of a store."""
        result = []
        for destination in destinations:
            lane = await self._lane(store, destination)
            pending = await self._read(
                PENDING_BETWEEN,
                (lane.cursor, END, store, f" {destination} ", f" {destination}! "),
            )
            counts = dict(
                await self._read(
                    "SELECT state, count(*) FROM deliveries WHERE store = ? AND destination = ?"
                    " GROUP BY state",
                    (store, destination),
                )
            )
            result.append(
                LaneStatus(
                    store,
                    destination,
                    pending=pending[0][0],
                    retrying=counts.get("retry", 0),
                    dead=counts.get("dead", 0),
                    cursor=lane.cursor,
                )
            )
        return result

    async def purge(self, store: str, destinations: Sequence[str], before: float) -> int:
        """Delete events received before ``before`` that every destination has settled.

        An event goes once every listed destination's cursor is past it and no retry or dead
        letter refers to it. Its ``event_id`` may then be accepted again: retention is also
        the de-duplication window.
        """
        cursors = [(await self._lane(store, d)).cursor for d in destinations]
        horizon = min(cursors) if cursors else None
        if horizon is None:
            rows = await self._read("SELECT max(seq) FROM events WHERE store = ?", (store,))
            horizon = rows[0][0] or 0

        def delete(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM events WHERE store = ? AND seq <= ? AND received_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.store = events.store"
                " AND d.seq = events.seq)",
                (store, horizon, before),
            )
            return cursor.rowcount

        deleted: int = await self.writer.write(delete)
        if deleted:
            await self.persons.prune(0, horizon)
        return deleted

    async def purge_attempts(self, before: float, max_rows: int) -> int:
        """Bound the attempts log: drop rows older than ``before`` and the oldest beyond
        ``max_rows`` (a bounded step per call: maintenance calls it every round)."""
        deleted: int = await self.writer.write(lambda db: purge_attempts(db, before, max_rows))
        return deleted

    async def person_events(
        self,
        store: str,
        anonymous_id: str | None,
        user_id: str | None,
        since: float,
        limit: int,
        paths: tuple[str, ...],
    ) -> list[tuple[str, str]]:
        """The latest committed events of a person (identity stitching), looked up in the
        side file's index: see :meth:`router.outbox.base.Outbox.person_events`."""
        params = (store, anonymous_id, user_id, since, limit, *paths)
        return await self.persons.lookup(params, len(paths))

    async def checkpoint(self) -> int:
        """Truncate the WAL between commits so it cannot grow without bound; return its pages.

        Without waiting: while a reader holds an old snapshot, TRUNCATE would wait in the busy
        handler (5 s) on the writer's thread, and every commit with it (measured: ingest
        requests past a 5 s client timeout under a long reader); instead it copies what it
        can now, and truncates on a later round once the reader is gone.
        """

        def truncate(db: sqlite3.Connection) -> int:
            db.execute("PRAGMA busy_timeout=0")
            try:
                row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            return int(row[1]) if row else 0

        try:
            pages: int = await self.writer.outside_transaction(truncate)
        except sqlite3.Error as error:
            raise OutboxUnavailable(f"checkpoint failed: {error}") from error
        return pages
