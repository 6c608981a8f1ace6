"""The PostgreSQL outbox's retention: delivered events lose their user data, dead letters
expire (as ``router.outbox.retention`` on SQLite, whose scrub position it shares)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import orjson

from router.outbox.erasure import without_user_data
from router.outbox.pg_replays import PgReplays
from router.outbox.pg_writer import Db
from router.outbox.retention import SCRUB_BATCH, SCRUB_POSITION


class PgRetention(PgReplays):
    """Delivered events stripped after one age, purged after another (:meth:`purge`); dead
    letters deleted after a third."""

    async def scrub_delivered(
        self, store: str, destinations: Sequence[str], before: float, *, rounds: int = 10
    ) -> int:
        """Strip the user data of the store's events received before ``before`` that every
        destination has settled, oldest first, up to ``rounds`` batches; an event with a
        retry or dead letter keeps it (a replay needs it). Returns how many were stripped."""
        cursors = [await self.durable_cursor(store, d) for d in destinations]
        position = await self.durable_cursor(store, SCRUB_POSITION)
        horizon = min(cursors) if cursors else position
        stripped = 0
        for _ in range(rounds):
            rows = await self._read(
                "SELECT seq, received_at FROM events WHERE store = $1 AND seq > $2"
                " AND seq <= $3 ORDER BY seq LIMIT $4",
                (store, position, horizon, SCRUB_BATCH),
            )
            due = []
            for seq, received_at in rows:  # the log is in commit order: stop at the first young
                if received_at >= before:
                    break
                due.append(seq)
            if not due:
                break
            stripped += await self.writer.write(_strip(store, due))
            position = due[-1]
            if len(due) < SCRUB_BATCH:
                break
        return stripped

    async def expire_dead_letters(self, store: str, before: float) -> dict[str, int]:
        """Delete the store's dead letters last changed before ``before``; how many per
        destination (the caller logs them)."""
        rows = await self.writer.write(
            lambda db: db.fetch(
                "DELETE FROM deliveries WHERE store = $1 AND state = 'dead' AND updated_at < $2"
                " RETURNING destination",
                store,
                before,
            )
        )
        return dict(Counter(row[0] for row in rows))


def _strip(store: str, seqs: list[int]) -> Callable[[Db], Awaitable[int]]:
    """The write that strips these events (not those with a delivery row) and records the
    position, in one transaction."""

    async def write(db: Db) -> int:
        return await _stripped(db, store, seqs)

    return write


async def _stripped(db: Db, store: str, seqs: list[int]) -> int:
    rows = await db.fetch(
        "SELECT e.seq, e.body FROM events e WHERE e.seq = ANY($1::bigint[]) AND NOT EXISTS"
        " (SELECT 1 FROM deliveries d WHERE d.store = e.store AND d.seq = e.seq) FOR UPDATE",
        seqs,
    )
    await db.executemany(
        "UPDATE events SET body = $1, anonymous_id = NULL, user_id = NULL WHERE seq = $2",
        [(orjson.dumps(without_user_data(orjson.loads(body))), seq) for seq, body in rows],
    )
    await db.execute(
        "INSERT INTO cursors (store, destination, seq) VALUES ($1, $2, $3)"
        " ON CONFLICT (store, destination) DO UPDATE SET"
        " seq = greatest(cursors.seq, excluded.seq)",
        store,
        SCRUB_POSITION,
        seqs[-1],
    )
    return len(rows)
