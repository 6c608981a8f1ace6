"""Leases of the PostgreSQL outbox: one dispatcher per (store, destination) across the nodes."""

from __future__ import annotations

from typing import Final

import asyncpg

from router.outbox.pg_writer import Db

#: Take the lease if it is free, expired or already this node's; renew it. The epoch grows
#: whenever the lease changes hands, and a settlement commits only under its claim's epoch.
_ACQUIRE: Final = (
    "INSERT INTO leases (store, destination, node, epoch, expires_at)"
    " VALUES ($1, $2, $3, 1, clock_timestamp() + $4 * interval '1 second')"
    " ON CONFLICT (store, destination) DO UPDATE SET"
    " epoch = CASE WHEN leases.node = excluded.node THEN leases.epoch ELSE leases.epoch + 1 END,"
    " node = excluded.node, expires_at = excluded.expires_at"
    " WHERE leases.node = excluded.node OR leases.expires_at < clock_timestamp()"
    " RETURNING epoch"
)
_RENEW: Final = (
    "UPDATE leases SET expires_at = clock_timestamp() + $2 * interval '1 second'"
    " WHERE node = $1 RETURNING store, destination, epoch"
)
_FENCE: Final = (
    "SELECT epoch FROM leases WHERE store = $1 AND destination = $2 AND node = $3 FOR UPDATE"
)
_GIVE_UP: Final = "UPDATE leases SET expires_at = '-infinity' WHERE node = $1"


async def acquire(
    db: Db | asyncpg.Pool, store: str, destination: str, node: str, secs: float
) -> int | None:
    """This node's epoch of the lease, taken or renewed; None while another node holds it."""
    epoch = await db.fetchval(_ACQUIRE, store, destination, node, secs)
    return None if epoch is None else int(epoch)


async def renew(db: Db | asyncpg.Pool, node: str, secs: float) -> dict[tuple[str, str], int]:
    """Extend every lease this node still holds; return them with their epochs."""
    rows = await db.fetch(_RENEW, node, secs)
    return {(row[0], row[1]): int(row[2]) for row in rows}


async def holds(db: Db, store: str, destination: str, node: str, epoch: int) -> bool:
    """Inside a transaction: whether this node still holds the lease at ``epoch``, locking
    the lease row until the commit so that no other node takes it meanwhile."""
    found = await db.fetchval(_FENCE, store, destination, node)
    return found is not None and int(found) == epoch


async def give_up(db: Db | asyncpg.Pool, node: str) -> None:
    """Let other nodes take this node's leases at once (a clean stop)."""
    await db.execute(_GIVE_UP, node)
