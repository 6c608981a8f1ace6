"""The SQLite outbox's retention: delivered events lose their user data, dead letters expire."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

import orjson

from router.outbox.erasure import without_user_data
from router.outbox.operations import SqliteOperations
from router.outbox.writer import Write

#: The ``cursors`` row (a name no destination id can take) where the user-data scrub of a
#: store keeps its position in the log: every delivered event up to it has been scrubbed.
SCRUB_POSITION: Final = "~user-data-scrubbed"
#: Events looked at per commit, so a scrub never holds the writer long.
SCRUB_BATCH: Final = 2000


def _stripped(body: bytes) -> bytes:
    return orjson.dumps(without_user_data(orjson.loads(body)))


class RetentionOperations(SqliteOperations):
    """Delivered events lose their user data after one age and are purged after another
    (:meth:`purge`); dead letters are deleted after a third."""

    async def scrub_delivered(
        self, store: str, destinations: Sequence[str], before: float, *, rounds: int = 10
    ) -> int:
        """Strip the user data (identity, IP, user agent, click ids; the conversion stays) of
        the store's events received before ``before`` that every destination has settled,
        oldest first, up to ``rounds`` batches; return how many were stripped. An event with a
        retry or dead letter keeps its user data (a replay needs it) until it is purged."""
        cursors = [(await self._lane(store, d)).cursor for d in destinations]
        found = await self._read(
            "SELECT seq FROM cursors WHERE store = ? AND destination = ?", (store, SCRUB_POSITION)
        )
        position = found[0][0] if found else 0
        horizon = min(cursors) if cursors else position
        stripped, first = 0, position + 1
        for _ in range(rounds):
            rows = await self._read(
                "SELECT seq, received_at FROM events WHERE +store = ? AND seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?",
                (store, position, horizon, SCRUB_BATCH),
            )
            due = [seq for seq, received_at in _prefix(rows, before)]
            if not due:
                break
            stripped += await self.writer.write(_scrub(store, due))
            position = due[-1]
            if len(due) < SCRUB_BATCH:
                break
        if stripped:  # the ids go from the look-up index too
            await self.persons.prune(first, position)
        return stripped

    async def expire_dead_letters(self, store: str, before: float) -> dict[str, int]:
        """Delete the store's dead letters last changed before ``before``; return how many per
        destination (the caller logs them: nothing goes silently)."""

        def expire(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute(
                "DELETE FROM deliveries WHERE store = ? AND state = 'dead' AND updated_at < ?"
                " RETURNING destination",
                (store, before),
            ).fetchall()
            counts: dict[str, int] = {}
            for (destination,) in rows:
                counts[destination] = counts.get(destination, 0) + 1
            return counts

        expired: dict[str, int] = await self.writer.write(expire)
        return expired


def _prefix(rows: list[tuple[int, float]], before: float) -> list[tuple[int, float]]:
    """The leading rows received before ``before`` (the log is in commit order)."""
    for index, (_, received_at) in enumerate(rows):
        if received_at >= before:
            return rows[:index]
    return rows


def _scrub(store: str, seqs: list[int]) -> Write:
    """The write that strips these events (not those with a delivery row) and records the
    position, in one transaction."""

    def write(db: sqlite3.Connection) -> int:
        db.create_function("tagless_strip", 1, _stripped, deterministic=True)
        changed = 0
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            cursor = db.execute(
                "UPDATE events SET body = tagless_strip(body), anonymous_id = NULL,"  # noqa: S608 - placeholders only
                f" user_id = NULL WHERE seq IN ({','.join('?' * len(chunk))})"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.store = events.store"
                " AND d.seq = events.seq)",
                chunk,
            )
            changed += cursor.rowcount
        db.execute(
            "INSERT INTO cursors (store, destination, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (store, destination) DO UPDATE SET seq = max(seq, excluded.seq)",
            (store, SCRUB_POSITION, seqs[-1]),
        )
        return changed

    return write
