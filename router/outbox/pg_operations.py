"""The PostgreSQL outbox's operations: status, dead letters, replay, purges, person look-up."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from router.clock import Clock
from router.outbox.attempts_log import PURGE_STEP
from router.outbox.base import DeadLetter, LaneStatus, OutboxUnavailable
from router.outbox.pg_writer import CHANNEL, Db, PgGroupWriter
from router.outbox.replays import REPLAYED_REASON, Match
from router.outbox.room import Backlog

_PENDING: Final = (
    "SELECT count(*) FROM events WHERE store = $1 AND seq > $2"
    " AND (strpos(routes, $3) > 0 OR strpos(routes, $4) > 0)"
)
#: A person's events (identity stitching): the same ids, and one link further through events
#: carrying both, newest first; each branch walks its partial index and stops at the limit.
_PERSON_EVENTS: Final = """
WITH own AS (
    (SELECT seq, anonymous_id, user_id FROM events WHERE store = $1 AND anonymous_id = $2
        AND received_at >= $4 ORDER BY seq DESC LIMIT $5)
    UNION
    (SELECT seq, anonymous_id, user_id FROM events WHERE store = $1 AND user_id = $3
        AND received_at >= $4 ORDER BY seq DESC LIMIT $5)
), linked AS (
    SELECT seq FROM own
    UNION
    SELECT x.seq FROM (SELECT DISTINCT anonymous_id FROM own WHERE anonymous_id IS NOT NULL
        AND anonymous_id IS DISTINCT FROM $2) l CROSS JOIN LATERAL (SELECT seq FROM events
        WHERE store = $1 AND anonymous_id = l.anonymous_id AND received_at >= $4
        ORDER BY seq DESC LIMIT $5) x
    UNION
    SELECT x.seq FROM (SELECT DISTINCT user_id FROM own WHERE user_id IS NOT NULL
        AND user_id IS DISTINCT FROM $3) l CROSS JOIN LATERAL (SELECT seq FROM events
        WHERE store = $1 AND user_id = l.user_id AND received_at >= $4
        ORDER BY seq DESC LIMIT $5) x
)
SELECT e.event_id, (SELECT jsonb_agg(convert_from(e.body, 'UTF8')::jsonb #> p.path::text[]
        ORDER BY p.n)::text FROM unnest($6::text[]) WITH ORDINALITY AS p(path, n))
FROM events e WHERE e.seq IN (SELECT seq FROM linked) ORDER BY e.seq DESC LIMIT $5
"""


class PgOperations:
    """The operator-facing half of :class:`~router.outbox.postgres.PostgresOutbox` (its
    base): counts, dead letters, replays, retention, person look-up."""

    writer: PgGroupWriter
    clock: Clock
    backlog: Backlog

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _notify(self, store: str) -> None:
        raise NotImplementedError

    async def durable_cursor(self, store: str, destination: str) -> int:
        """The destination's durable cursor: every routed event at or below it is settled."""
        rows = await self._read(
            "SELECT seq FROM cursors WHERE store = $1 AND destination = $2", (store, destination)
        )
        return int(rows[0][0]) if rows else 0

    async def paused_until(self, store: str, destination: str) -> float:
        """Until when a node rested the destination (0: it does not rest)."""
        rows = await self._read(
            "SELECT until FROM pauses WHERE store = $1 AND destination = $2", (store, destination)
        )
        return float(rows[0][0]) if rows else 0.0

    async def save_pause(self, store: str, destination: str, until: float, reason: str) -> None:
        """Record a rest for every node (a longer one already recorded stays)."""
        with contextlib.suppress(OutboxUnavailable):
            await self.writer.write(
                lambda db: db.execute(
                    "INSERT INTO pauses (store, destination, until, reason) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (store, destination) DO UPDATE SET until = excluded.until,"
                    " reason = excluded.reason WHERE pauses.until < excluded.until",
                    store,
                    destination,
                    until,
                    reason,
                )
            )

    async def dead_letters(
        self, store: str, destination: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """The newest dead letters of a store, optionally of one destination."""
        rows = await self._read(
            "SELECT d.store, d.destination, d.seq, e.event_id, d.attempts, d.reason,"
            " d.last_status, d.detail, d.updated_at"
            " FROM deliveries d JOIN events e ON e.seq = d.seq"
            " WHERE d.store = $1 AND d.state = 'dead' AND ($2::text IS NULL OR d.destination = $2)"
            " ORDER BY d.updated_at DESC LIMIT $3",
            (store, destination, limit),
        )
        return [DeadLetter(*row) for row in rows]

    async def status(self, store: str, destinations: Sequence[str]) -> list[LaneStatus]:
        """Pending, retrying and dead counts per destination of a store (every node's)."""
        result = []
        for destination in destinations:
            cursor = await self.durable_cursor(store, destination)
            pending = await self._read(
                _PENDING, (store, cursor, f" {destination} ", f" {destination}! ")
            )
            counts = dict(
                await self._read(
                    "SELECT state, count(*) FROM deliveries WHERE store = $1"
                    " AND destination = $2 GROUP BY state",
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
                    cursor=cursor,
                )
            )
        return result

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
        """The dead letters of a store matching every filter given (``reason``: its start)."""
        rows = await self._read(
            "SELECT d.destination, d.seq, e.event_id, e.received_at,"
            " convert_from(e.body, 'UTF8')::jsonb ->> 'occurred_at'"
            " FROM deliveries d JOIN events e ON e.seq = d.seq"
            " WHERE d.store = $1 AND d.state = 'dead'"
            " AND ($2::text IS NULL OR d.destination = $2)"
            " AND ($3::text IS NULL OR starts_with(d.reason, $3))"
            " AND ($4::bigint[] IS NULL OR d.seq = ANY($4))"
            " AND ($5::text[] IS NULL OR e.event_id = ANY($5))"
            " AND ($6::float8 IS NULL OR e.received_at >= $6)"
            " AND ($7::float8 IS NULL OR e.received_at < $7) ORDER BY d.seq",
            (
                store,
                destination,
                reason,
                None if seqs is None else list(seqs),
                None if event_ids is None else list(event_ids),
                since,
                until,
            ),
        )
        return [Match(*row) for row in rows]

    async def revive(self, store: str, found: Sequence[Match]) -> int:
        """Make these dead letters due now with a fresh attempt budget; return how many were
        still dead, and wake every node's dispatchers."""
        if not found:
            return 0
        now = self.clock.now()

        async def revive(db: Db) -> int:
            done = await db.fetchval(
                "WITH r AS (UPDATE deliveries SET state = 'retry', attempts = 0, due_at = $1,"
                " first_attempt_at = $1, reason = $2 FROM unnest($4::text[], $5::bigint[])"
                " AS m(destination, seq) WHERE deliveries.store = $3"
                " AND deliveries.destination = m.destination AND deliveries.seq = m.seq"
                " AND state = 'dead' RETURNING 1) SELECT count(*) FROM r",
                now,
                REPLAYED_REASON,
                store,
                [m.destination for m in found],
                [m.seq for m in found],
            )
            await db.execute("SELECT pg_notify($1, $2)", CHANNEL, store)
            return int(done)

        revived: int = await self.writer.write(revive)
        for dest, count in Counter(m.destination for m in found).items():
            self.backlog.settled(store, dest, passed=0, retrying=count)
        self._notify(store)
        return revived

    async def replay(
        self, store: str, destination: str | None = None, *, dry_run: bool = False, **filters: Any
    ) -> int:
        """Make matching dead letters (``filters``: those of :meth:`dead_matches`) due now;
        return how many (would be, with ``dry_run``)."""
        found = await self.dead_matches(store, destination, **filters)
        if dry_run:
            return len(found)
        return await self.revive(store, found)

    async def purge(self, store: str, destinations: Sequence[str], before: float) -> int:
        """Delete events received before ``before`` that every destination has settled (its
        durable cursor past them, no retry or dead letter of them)."""
        cursors = [await self.durable_cursor(store, d) for d in destinations]

        async def delete(db: Db) -> int:
            horizon = min(cursors) if cursors else None
            if horizon is None:
                horizon = await db.fetchval(
                    "SELECT coalesce(max(seq), 0) FROM events WHERE store = $1", store
                )
            status = await db.execute(
                "DELETE FROM events e WHERE e.store = $1 AND e.seq <= $2 AND e.received_at < $3"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.store = e.store"
                " AND d.seq = e.seq)",
                store,
                horizon,
                before,
            )
            return int(status.split()[-1])

        deleted: int = await self.writer.write(delete)
        return deleted

    async def purge_attempts(self, before: float, max_rows: int) -> int:
        """Bound the attempts log: rows older than ``before`` and the oldest beyond
        ``max_rows``, at most ``PURGE_STEP`` a call (ids grow with time)."""

        async def delete(db: Db) -> int:
            bounds = await db.fetchrow("SELECT min(id), max(id) FROM attempts")
            if bounds is None or bounds[0] is None:
                return 0
            first, last = int(bounds[0]), int(bounds[1])
            step_end = first + PURGE_STEP
            young = await db.fetchval(
                "SELECT min(id) FROM attempts WHERE id >= $1 AND id < $2 AND at >= $3",
                first,
                step_end,
                before,
            )
            keep_from = min(max(young or step_end, last - max_rows + 1), step_end)
            status = await db.execute("DELETE FROM attempts WHERE id < $1", keep_from)
            return int(status.split()[-1])

        deleted: int = await self.writer.write(delete)
        return deleted

    async def disk_bytes(self) -> int:
        """The database's size on disk (every node's events, WAL not included)."""
        rows = await self._read("SELECT pg_database_size(current_database())", ())
        return int(rows[0][0])

    async def checkpoint(self) -> int:
        """Nothing to do: PostgreSQL checkpoints its own WAL."""
        return 0

    async def person_events(
        self,
        store: str,
        anonymous_id: str | None,
        user_id: str | None,
        since: float,
        limit: int,
        paths: tuple[str, ...],
    ) -> list[tuple[str, str]]:
        """The latest committed events of a person (identity stitching): see
        :meth:`router.outbox.base.Outbox.person_events`; ``paths`` are ``$.a.b`` paths."""
        pg_paths = [pg_path(p) for p in paths]
        rows = await self._read(
            _PERSON_EVENTS, (store, anonymous_id, user_id, since, limit, pg_paths)
        )
        return [(row[0], row[1]) for row in rows]


def pg_path(json_path: str) -> str:
    """``$.a.b[0]`` as PostgreSQL's text array ``{a,b,0}``."""
    parts = json_path.removeprefix("$").replace("[", ".").replace("]", "").split(".")
    return "{" + ",".join(f'"{part}"' for part in parts if part) + "}"
