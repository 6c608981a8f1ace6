"""Admission on the PostgreSQL outbox: the backlog cap, counted in the shared database."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from router.clock import Clock
from router.outbox.pg_writer import Db
from router.outbox.room import PROBE_EVERY_SECS, Admission, DiskFloor, Writer

#: A destination's undelivered events: routed past its durable cursor, and retries waiting.
_COUNT: Final = (
    "SELECT coalesce((SELECT seq FROM cursors WHERE store = $1 AND destination = $2), 0)"
)
_PENDING: Final = (
    "SELECT count(*) FROM events WHERE store = $1 AND seq > $2"
    " AND (strpos(routes, $3) > 0 OR strpos(routes, $4) > 0)"
)
_RETRYING: Final = (
    "SELECT count(*) FROM deliveries WHERE store = $1 AND destination = $2 AND state = 'retry'"
)


class PgAdmission(Admission):
    """:class:`Admission` without a disk floor (the database's disk is its operator's), whose
    recount reads what every node committed and settled."""

    def __init__(self, writer: Writer, clock: Clock, max_pending_events: int) -> None:
        super().__init__(writer, clock, max_pending_events, DiskFloor(Path("."), 0, clock))

    async def refresh(self, store: str, destinations: Sequence[str]) -> None:
        """Count each destination's undelivered events in the database (one snapshot)."""

        async def count(db: Db) -> list[tuple[str, int, int]]:
            counted = []
            for dest in destinations:
                cursor = await db.fetchval(_COUNT, store, dest)
                pending = await db.fetchval(_PENDING, store, cursor, f" {dest} ", f" {dest}! ")
                retrying = await db.fetchval(_RETRYING, store, dest)
                counted.append((dest, int(pending), int(retrying)))
            return counted

        counted: list[tuple[str, int, int]] = await self.writer.write(count)
        for dest, pending, retrying in counted:
            self.backlog.reset(store, dest, pending=pending, retrying=retrying)

    async def _probe_commit(self) -> bool:
        now = self.clock.now()
        if self._probed_at is not None and 0 <= now - self._probed_at < PROBE_EVERY_SECS:
            return False
        self._probed_at = now
        probe = getattr(self.writer, "probe", None)
        return bool(probe is not None and await probe())
