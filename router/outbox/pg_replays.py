"""The PostgreSQL outbox's backfill: events a destination's cursor passed, sent to it again."""

from __future__ import annotations

from collections.abc import Sequence

from router.outbox.pg_operations import PgOperations
from router.outbox.pg_writer import CHANNEL, Db
from router.outbox.replays import BACKFILL_REASON, Delivered


class PgReplays(PgOperations):
    """Backfills on PostgreSQL (dead-letter replays: :class:`PgOperations`), the same
    operations as ``router.outbox.replays`` on SQLite."""

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
        or dead letter there, oldest first, at most ``limit``."""
        cursor = await self.durable_cursor(store, destination)
        rows = await self._read(
            "SELECT e.seq, e.event_id, e.received_at, e.routes, e.body FROM events e"
            " WHERE e.store = $1 AND e.seq > $2 AND e.seq <= $3"
            " AND ($4::float8 IS NULL OR e.received_at >= $4)"
            " AND ($5::float8 IS NULL OR e.received_at < $5)"
            " AND ($6::text[] IS NULL OR e.event_id = ANY($6)) AND NOT EXISTS (SELECT 1"
            " FROM deliveries d WHERE d.store = e.store AND d.destination = $7"
            " AND d.seq = e.seq) ORDER BY e.seq LIMIT $8",
            (store, after, cursor, since, until,
             None if event_ids is None else list(event_ids), destination, limit),
        )  # fmt: skip
        return [Delivered(*row) for row in rows]

    async def ahead_of_cursor(
        self, store: str, destination: str, since: float | None, until: float | None
    ) -> int:
        """Events of the time range ``destination``'s cursor has not passed yet."""
        cursor = await self.durable_cursor(store, destination)
        rows = await self._read(
            "SELECT count(*) FROM events e WHERE e.store = $1 AND e.seq > $2"
            " AND ($3::float8 IS NULL OR e.received_at >= $3)"
            " AND ($4::float8 IS NULL OR e.received_at < $4)",
            (store, cursor, since, until),
        )
        return int(rows[0][0])

    async def backfill(
        self, store: str, destination: str, events: Sequence[tuple[int, str]]
    ) -> int:
        """Make each ``(seq, route)`` event due now for ``destination`` as a retry with a
        fresh attempt budget, adding ``route`` to its routes if it was not routed there; an
        event with a retry or dead letter there is left alone. Returns how many."""
        if not events:
            return 0
        now = self.clock.now()
        seqs = [seq for seq, _ in events]
        routes = [route for _, route in events]

        async def schedule(db: Db) -> int:
            done = await db.fetchval(
                "WITH s AS (INSERT INTO deliveries (store, destination, seq, state, attempts,"
                " first_attempt_at, due_at, reason, last_status, detail, updated_at)"
                " SELECT $1, $2, seq, 'retry', 0, $3, $3, $4, NULL, '', $3"
                " FROM unnest($5::bigint[]) AS seq"
                " ON CONFLICT (store, destination, seq) DO NOTHING RETURNING 1)"
                " SELECT count(*) FROM s",
                store, destination, now, BACKFILL_REASON, seqs,
            )  # fmt: skip
            await db.execute(
                "UPDATE events e SET routes = e.routes || r.route || ' '"
                " FROM unnest($1::bigint[], $2::text[]) AS r(seq, route) WHERE e.seq = r.seq"
                " AND strpos(e.routes, $3) = 0 AND strpos(e.routes, $4) = 0",
                seqs, routes, f" {destination} ", f" {destination}! ",
            )  # fmt: skip
            await db.execute("SELECT pg_notify($1, $2)", CHANNEL, store)
            return int(done)

        scheduled: int = await self.writer.write(schedule)
        self.backlog.settled(store, destination, passed=0, retrying=scheduled)
        self._notify(store)
        return scheduled
