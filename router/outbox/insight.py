"""Read-only queries of the SQLite outbox behind the admin pages: finding events, their
delivery state and attempts, windowed counts and the identity fields of recent events."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import aiosqlite

from router.outbox.persons import PersonIndex
from router.privacy import hash_email, is_hashed

#: The SQL function the reader connection gets for looking events up by email.
EMAIL_KEY_FUNCTION: Final = "tagless_email_key"

#: An indexed look-up of a store's events: by event id, user id or anonymous id.
IndexedKind = Literal["event_id", "user_id", "anonymous_id"]

_EVENT_COLUMNS: Final = "seq, store, event_id, received_at, routes, body"
BY_INDEX: Final = {
    "event_id": f"SELECT {_EVENT_COLUMNS} FROM events WHERE store = ? AND event_id = ? LIMIT ?",  # noqa: S608 - constant
    "user_id": f"SELECT {_EVENT_COLUMNS} FROM events WHERE store = ? AND user_id = ?"  # noqa: S608 - constant
    " ORDER BY seq DESC LIMIT ?",
    "anonymous_id": f"SELECT {_EVENT_COLUMNS} FROM events WHERE store = ? AND anonymous_id = ?"  # noqa: S608 - constant
    " ORDER BY seq DESC LIMIT ?",
}
#: The person columns, indexed in stitching's side file (SQLite, ``router/outbox/persons.py``)
#: or beside the events (PostgreSQL), for stores that stitch.
_PERSON_COLUMNS: Final = ("user_id", "anonymous_id")
# Newest first, stopping at the limit: a scan of the store's events, for the debugger only
# (the person columns are filled only for stores that stitch).
_BY_BODY: Final = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE +store = ?"  # noqa: S608 - constant
    " AND json_extract(CAST(body AS TEXT), ?) = ? ORDER BY seq DESC LIMIT ?"
)
_BY_EMAIL: Final = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE +store = ? AND EXISTS (SELECT 1 FROM"  # noqa: S608 - constant
    f" json_each(CAST(body AS TEXT), '$.emails') WHERE {EMAIL_KEY_FUNCTION}(value) = ?)"
    " ORDER BY seq DESC LIMIT ?"
)
_ATTEMPTS_OF: Final = (
    "SELECT at, status, latency_ms, delivered, retrying, dead, skipped, reason, answer,"
    " next_retry_at FROM attempts WHERE store = ?1 AND destination = ?2 AND seq_hi >= ?3"
    " AND seq_lo <= ?3 AND (seqs IS NULL OR instr(',' || seqs || ',', ',' || ?3 || ',') > 0)"
    " ORDER BY id"
)

_ROUTED_PAST_CURSOR: Final = (
    "FROM events WHERE seq > (SELECT coalesce(max(seq), 0) FROM cursors WHERE store = ?1"
    " AND destination = ?2) AND +store = ?1 AND (instr(routes, ?3) > 0 OR instr(routes, ?4) > 0)"
)
_QUEUE: Final = (
    f"SELECT (SELECT count(*) {_ROUTED_PAST_CURSOR}),"  # noqa: S608 - constant
    " (SELECT count(*) FROM deliveries WHERE store = ?1 AND destination = ?2"
    " AND state = 'retry'),"
    f" (SELECT received_at {_ROUTED_PAST_CURSOR} ORDER BY seq LIMIT 1),"
    " (SELECT min(e.received_at) FROM deliveries d JOIN events e ON e.seq = d.seq"
    " WHERE d.store = ?1 AND d.destination = ?2 AND d.state = 'retry')"
)


def email_key(value: object) -> str | None:
    """What an email is looked up by: the SHA-256 of its trimmed, lowercased form (an email the
    sender hashed already is its own key). The raw email is never stored by a look-up."""
    if not isinstance(value, str):
        return None
    if is_hashed(value.strip()):
        return value.strip().lower()
    return hash_email(value, "meta")


class Insight:
    """The queries, on a read-only connection of their own, opened on first use: a long scan
    for an admin page never delays the writer nor the dispatchers' claims, which read on the
    outbox's reader connection."""

    def __init__(self, path: Path, persons: PersonIndex | None = None) -> None:
        self.path = path
        #: Stitching's look-up index: user and anonymous ids of stores that stitch.
        self.persons = persons
        self._db: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        db = self._db or await self._open()
        return list(await db.execute_fetchall(sql, params))

    async def _open(self) -> aiosqlite.Connection:
        async with self._opening:
            if self._db is None:
                db = await aiosqlite.connect(self.path, isolation_level=None)
                await db.execute("PRAGMA busy_timeout=5000")
                await db.execute("PRAGMA query_only=1")
                await db.create_function(EMAIL_KEY_FUNCTION, 1, email_key, deterministic=True)
                self._db = db
            return self._db

    async def close(self) -> None:
        """Close the connection, if it was opened; the next query opens it again."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def events_by(
        self, kind: IndexedKind | Literal["order_id"], store: str, value: str, limit: int
    ) -> list[Any]:
        """A store's events whose ``kind`` is ``value``, newest first: ``(seq, store,
        event_id, received_at, routes, body)``."""
        if kind in _PERSON_COLUMNS and self.persons is not None:
            found = await self._by_person_index(self.persons, kind, store, value, limit)
            if found:
                return found
        elif kind in BY_INDEX:
            found = await self._read(BY_INDEX[kind], (store, value, limit))
            if found or kind == "event_id":
                return found
        return await self._read(_BY_BODY, (store, f"$.{kind}", value, limit))

    async def _by_person_index(
        self, persons: PersonIndex, kind: str, store: str, value: str, limit: int
    ) -> list[Any]:
        """The events stitching's look-up index holds for the id, checked against their own
        columns (an erased or stripped event no longer carries it)."""
        seqs = await persons.seqs_of(kind, store, value, limit)
        if not seqs:
            return []
        return await self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq IN ({','.join('?' * len(seqs))})"  # noqa: S608 - constant columns, placeholders
            f" AND +store = ? AND {kind} = ? ORDER BY seq DESC",
            [*seqs, store, value],
        )

    async def events_by_email_key(self, store: str, key: str, limit: int) -> list[Any]:
        """A store's events carrying an email whose :func:`email_key` is ``key``."""
        return await self._read(_BY_EMAIL, (store, key, limit))

    async def delivery(self, store: str, destination: str, seq: int) -> Any | None:
        """``(state, attempts, reason, last_status, detail, due_at)`` of an event's retry or
        dead letter at a destination, or None."""
        rows = await self._read(
            "SELECT state, attempts, reason, last_status, detail, due_at FROM deliveries"
            " WHERE store = ? AND destination = ? AND seq = ?",
            (store, destination, seq),
        )
        return rows[0] if rows else None

    async def cursor(self, store: str, destination: str) -> int:
        """The destination's durable cursor: every routed event at or below it is settled."""
        rows = await self._read(
            "SELECT seq FROM cursors WHERE store = ? AND destination = ?", (store, destination)
        )
        return int(rows[0][0]) if rows else 0

    async def attempts_of(self, store: str, destination: str, seq: int) -> list[Any]:
        """The attempts-log rows holding an event at a destination, oldest first."""
        return await self._read(_ATTEMPTS_OF, (store, destination, seq))

    async def first_id_since(self, table: Literal["events", "attempts"], since: float) -> int:
        """The first row id (an event's seq) of ``table`` at or after ``since``: rows are
        appended in time order, so a binary search over the ids finds it in a few look-ups
        without an index on time."""
        column, key = ("received_at", "seq") if table == "events" else ("at", "id")
        bounds = await self._read(f"SELECT min({key}), max({key}) FROM {table}", ())  # noqa: S608 - fixed names
        low, high = bounds[0]
        if low is None:
            return 0
        probe = f"SELECT {key}, {column} FROM {table} WHERE {key} >= ? ORDER BY {key} LIMIT 1"  # noqa: S608 - fixed names
        high += 1
        while low < high:
            middle = (low + high) // 2
            found = await self._read(probe, (middle,))
            if not found or found[0][1] >= since:
                high = middle
            else:
                low = found[0][0] + 1
        return int(low)

    async def routes_since(self, store: str, since_seq: int) -> list[Any]:
        """``(routes, count)`` of a store's events from ``since_seq`` on."""
        return await self._read(
            "SELECT routes, count(*) FROM events WHERE seq >= ? AND +store = ? GROUP BY routes",
            (since_seq, store),
        )

    async def unrouted_since(self, store: str, destination: str, since_seq: int) -> list[Any]:
        """``(name, source_name, consent JSON, count)`` of a store's events from ``since_seq``
        on that were not routed to ``destination`` (filtered, or skipped by consent)."""
        return await self._read(
            "SELECT json_extract(CAST(body AS TEXT), '$.name', '$.source_name', '$.consent'),"
            " count(*) FROM events WHERE seq >= ? AND +store = ? AND instr(routes, ?) = 0"
            " AND instr(routes, ?) = 0 GROUP BY 1",
            (since_seq, store, f" {destination} ", f" {destination}! "),
        )

    async def attempt_totals(self, store: str, destination: str, since_id: int) -> Any:
        """``(delivered, retrying, dead, skipped)`` summed over the attempts log from an id."""
        rows = await self._read(
            "SELECT coalesce(sum(delivered), 0), coalesce(sum(retrying), 0),"
            " coalesce(sum(dead), 0), coalesce(sum(skipped), 0) FROM attempts"
            " WHERE id >= ? AND store = ? AND destination = ?",
            (since_id, store, destination),
        )
        return rows[0]

    async def latencies(self, store: str, destination: str, since_id: int) -> list[float]:
        """Every request latency (ms) of the attempts log from an id, sorted."""
        rows = await self._read(
            "SELECT latency_ms FROM attempts WHERE id >= ? AND store = ? AND destination = ?"
            " AND latency_ms IS NOT NULL ORDER BY latency_ms",
            (since_id, store, destination),
        )
        return [float(row[0]) for row in rows]

    async def queue(self, store: str, destination: str) -> tuple[int, int, float | None]:
        """What waits for ``destination``: events routed past its durable cursor, retries,
        and when the oldest of them was received. One statement, so one snapshot: the cursor
        and the retries a settle writes are seen together, never half."""
        rows = await self._read(
            _QUEUE, (store, destination, f" {destination} ", f" {destination}! ")
        )
        pending, retrying, first_new, oldest_retry = rows[0]
        waiting = [t for t in (first_new, oldest_retry) if t is not None]
        return int(pending), int(retrying), min(waiting) if waiting else None

    async def identities_since(
        self, store: str, since_seq: int, paths: Sequence[str], limit: int
    ) -> list[Any]:
        """``(routes, JSON array of the body's values at paths)`` of a store's newest events
        from ``since_seq`` on, at most ``limit``."""
        marks = ", ".join("?" * len(paths))
        return await self._read(
            f"SELECT routes, json_extract(CAST(body AS TEXT), {marks}) FROM events"  # noqa: S608 - placeholders only
            " WHERE seq >= ? AND +store = ? ORDER BY seq DESC LIMIT ?",
            (*paths, since_seq, store, limit),
        )
