"""The SQLite outbox's replays: dead letters made due again, delivered events sent again."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, Protocol

from router.outbox.operations import SqliteOperations

#: The reason a backfilled event's retry row carries until its first try settles it.
BACKFILL_REASON: Final = "backfill"
REPLAYED_REASON: Final = "replayed"


class Match(NamedTuple):
    """An event a replay or backfill found for one destination."""

    destination: str
    seq: int
    event_id: str
    received_at: float
    #: The event's ``occurred_at`` as stored (ISO 8601): what platforms' age limits measure.
    occurred_at: str | None


class Delivered(NamedTuple):
    """An event the destination's cursor has passed with no retry or dead letter of it: sent
    (or rightly not sent), or, without its route, never meant for the destination."""

    seq: int
    event_id: str
    received_at: float
    routes: str
    body: bytes


def _when(where: list[str], params: list[Any], clause: str, value: Any) -> None:
    """Add ``clause`` (one ``?``) to a WHERE unless ``value`` is None."""
    if value is not None:
        where.append(clause)
        params.append(value)


def _in_range(
    where: list[str], params: list[Any], since: float | None, until: float | None
) -> None:
    """Add ``since <= received_at < until`` to a WHERE over ``events e``."""
    _when(where, params, "e.received_at >= ?", since)
    _when(where, params, "e.received_at < ?", until)


def _one_of(where: list[str], params: list[Any], column: str, values: Sequence[Any] | None) -> None:
    if values is not None:
        where.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)


class Replayable(Protocol):
    """What a replay or backfill asks of an outbox, whichever backend holds it."""

    async def dead_matches(
        self,
        store: str,
        destination: str | None = None,
        *,
        seqs: Sequence[int] | None = None,
        event_ids: Sequence[str] | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Match]: ...

    async def revive(self, store: str, found: Sequence[Match]) -> int: ...

    async def delivered(
        self,
        store: str,
        destination: str,
        *,
        since: float | None = None,
        until: float | None = None,
        event_ids: Sequence[str] | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[Delivered]: ...

    async def ahead_of_cursor(
        self, store: str, destination: str, since: float | None, until: float | None
    ) -> int: ...

    async def backfill(
        self, store: str, destination: str, events: Sequence[tuple[int, str]]
    ) -> int: ...


class ReplayOperations(SqliteOperations):
    """Dead letters made due again by destination, sequence number, event id, reason and time
    range; a backfill sends a destination events it already got (or never got) once more."""

    async def dead_matches(
        self,
        store: str,
        destination: str | None = None,
        *,
        seqs: Sequence[int] | None = None,
        event_ids: Sequence[str] | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Match]:
        """The dead letters of a store matching every filter given (``reason``: the start of
        the dead letter's reason, ``http_400`` matches ``http_400: ...``)."""
        where = ["d.store = ?", "d.state = 'dead'"]
        params: list[Any] = [store]
        _when(where, params, "d.destination = ?", destination)
        _when(where, params, "instr(d.reason, ?) = 1", reason)
        _one_of(where, params, "d.seq", seqs)
        _one_of(where, params, "e.event_id", event_ids)
        _in_range(where, params, since, until)
        rows = await self._read(
            "SELECT d.destination, d.seq, e.event_id, e.received_at,"  # noqa: S608 - fixed clauses, bound values
            " json_extract(CAST(e.body AS TEXT), '$.occurred_at')"
            f" FROM deliveries d JOIN events e ON e.seq = d.seq WHERE {' AND '.join(where)}"
            " ORDER BY d.seq",
            params,
        )
        return [Match(*row) for row in rows]

    async def revive(self, store: str, found: Sequence[Match]) -> int:
        """Make these dead letters due now with a fresh attempt budget; return how many were
        still dead (a dead letter replayed meanwhile is left alone)."""
        if not found:
            return 0
        now = self.clock.now()
        rows = [(now, now, REPLAYED_REASON, store, m.destination, m.seq) for m in found]

        def revive(db: sqlite3.Connection) -> int:
            cursor = db.executemany(
                "UPDATE deliveries SET state = 'retry', attempts = 0, due_at = ?,"
                " first_attempt_at = ?, reason = ? WHERE store = ? AND destination = ?"
                " AND seq = ? AND state = 'dead'",
                rows,
            )
            return int(cursor.rowcount)

        revived: int = await self.writer.write(revive)
        for dest, count in Counter(m.destination for m in found).items():
            self.backlog.settled(store, dest, passed=0, retrying=count)
        self._notify(store)
        return revived

    async def replay(
        self, store: str, destination: str | None = None, *, dry_run: bool = False, **filters: Any
    ) -> int:
        """Make matching dead letters (``filters``: those of :meth:`dead_matches`) due now with
        a fresh attempt budget; return how many (with ``dry_run``, how many would be)."""
        found = await self.dead_matches(store, destination, **filters)
        if dry_run:
            return len(found)
        return await self.revive(store, found)

    async def delivered(
        self,
        store: str,
        destination: str,
        *,
        since: float | None = None,
        until: float | None = None,
        event_ids: Sequence[str] | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[Delivered]:
        """Events of a store past ``after`` and behind ``destination``'s cursor, with no retry
        or dead letter there, oldest first, at most ``limit`` (page on with the last seq)."""
        cursor = (await self._lane(store, destination)).cursor
        where = ["+e.store = ?", "e.seq > ?", "e.seq <= ?"]
        params: list[Any] = [store, after, cursor]
        _in_range(where, params, since, until)
        _one_of(where, params, "e.event_id", event_ids)
        params += [destination, limit]
        rows = await self._read(
            "SELECT e.seq, e.event_id, e.received_at, e.routes, e.body FROM events e"  # noqa: S608 - fixed clauses, bound values
            f" WHERE {' AND '.join(where)} AND NOT EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.store = e.store AND d.destination = ? AND d.seq = e.seq)"
            " ORDER BY e.seq LIMIT ?",
            params,
        )
        return [Delivered(*row) for row in rows]

    async def ahead_of_cursor(
        self, store: str, destination: str, since: float | None, until: float | None
    ) -> int:
        """Events of the time range ``destination``'s cursor has not passed yet (its own
        delivery is still to come; a backfill leaves them to it)."""
        cursor = (await self._lane(store, destination)).cursor
        where = ["+e.store = ?", "e.seq > ?"]
        params: list[Any] = [store, cursor]
        _in_range(where, params, since, until)
        rows = await self._read(
            f"SELECT count(*) FROM events e WHERE {' AND '.join(where)}",  # noqa: S608 - fixed clauses, bound values
            params,
        )
        return int(rows[0][0])

    async def backfill(
        self, store: str, destination: str, events: Sequence[tuple[int, str]]
    ) -> int:
        """Make each ``(seq, route)`` event due now for ``destination`` as a retry with a fresh
        attempt budget; ``route`` (``id`` or ``id!`` for "without user data") joins the
        event's routes if it was not routed there. An event that has a retry or dead letter
        there meanwhile is left alone. Returns how many were made due."""
        if not events:
            return 0
        now = self.clock.now()
        rows = [(store, destination, seq, now, now, BACKFILL_REASON, now) for seq, _ in events]
        routes = [
            (f"{route} ", seq, f" {destination} ", f" {destination}! ") for seq, route in events
        ]

        def schedule(db: sqlite3.Connection) -> int:
            cursor = db.executemany(
                "INSERT INTO deliveries (store, destination, seq, state, attempts,"
                " first_attempt_at, due_at, reason, last_status, detail, updated_at)"
                " VALUES (?, ?, ?, 'retry', 0, ?, ?, ?, NULL, '', ?)"
                " ON CONFLICT (store, destination, seq) DO NOTHING",
                rows,
            )
            db.executemany(
                "UPDATE events SET routes = routes || ? WHERE seq = ?"
                " AND instr(routes, ?) = 0 AND instr(routes, ?) = 0",
                routes,
            )
            return int(cursor.rowcount)

        scheduled: int = await self.writer.write(schedule)
        self.backlog.settled(store, destination, passed=0, retrying=scheduled)
        self._notify(store)
        return scheduled
