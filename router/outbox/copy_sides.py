"""The two ends of ``tagless outbox copy``: a SQLite file or a PostgreSQL database, read and
written with plain connections while no Tagless runs on them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import asyncpg

from router.outbox.pg_writer import lock_appends

#: Columns of an event as copied (seq first: the source's order).
EVENT_COLUMNS: Final = "seq, store, event_id, received_at, routes, body, anonymous_id, user_id"
DELIVERY_COLUMNS: Final = (
    "store, destination, seq, state, attempts, first_attempt_at, due_at, reason, last_status,"
    " detail, updated_at"
)


class Side(Protocol):
    """What the copy reads of its source and writes to its target."""

    async def events(self, after: int, limit: int) -> list[tuple[Any, ...]]: ...

    async def cursors(self) -> dict[tuple[str, str], int]: ...

    async def deliveries(self) -> list[tuple[Any, ...]]: ...

    async def begin(self) -> None: ...

    async def insert(self, events: Sequence[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        """Store the events an outbox does not hold yet; return the new seq of each stored
        (an event it held already is left as it is, and left out)."""

    async def put(
        self, deliveries: Sequence[tuple[Any, ...]], top: dict[tuple[str, str], int]
    ) -> None: ...

    async def high_water(self) -> int: ...

    async def commit(self) -> None: ...

    async def close(self) -> None: ...


class SqliteSide:
    """A SQLite outbox file (its schema brought up to date by opening it first)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout=5000")

    async def events(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        rows = self.db.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608 - constant
            (after, limit),
        )
        return [tuple(row) for row in rows]

    async def cursors(self) -> dict[tuple[str, str], int]:
        rows = self.db.execute("SELECT store, destination, seq FROM cursors")
        return {(store, dest): int(seq) for store, dest, seq in rows}

    async def deliveries(self) -> list[tuple[Any, ...]]:
        rows = self.db.execute(f"SELECT {DELIVERY_COLUMNS} FROM deliveries ORDER BY seq")  # noqa: S608 - constant
        return [tuple(row) for row in rows]

    async def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    async def insert(self, events: Sequence[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for event in events:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO events (store, event_id, received_at, routes, body,"
                " anonymous_id, user_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                event[1:],
            )
            if cursor.rowcount == 1 and cursor.lastrowid is not None:
                found[(event[1], event[2])] = cursor.lastrowid
        return found

    async def put(
        self, deliveries: Sequence[tuple[Any, ...]], top: dict[tuple[str, str], int]
    ) -> None:
        self.db.executemany(
            f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 - constant
            " ON CONFLICT (store, destination, seq) DO NOTHING",
            deliveries,
        )
        self.db.executemany(
            "INSERT INTO cursors (store, destination, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (store, destination) DO UPDATE SET seq = max(seq, excluded.seq)",
            [(store, dest, seq) for (store, dest), seq in top.items()],
        )

    async def high_water(self) -> int:
        row = self.db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0])

    async def commit(self) -> None:
        self.db.execute("COMMIT")

    async def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()


class PostgresSide:
    """A PostgreSQL outbox (its schema brought up to date by opening it first)."""

    def __init__(self, db: asyncpg.Connection) -> None:
        self.db = db
        self._transaction: Any = None

    @classmethod
    async def connect(cls, url: str) -> PostgresSide:
        return cls(await asyncpg.connect(url))

    async def events(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        rows = await self.db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",  # noqa: S608 - constant
            after,
            limit,
        )
        return [tuple(row) for row in rows]

    async def cursors(self) -> dict[tuple[str, str], int]:
        rows = await self.db.fetch("SELECT store, destination, seq FROM cursors")
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def deliveries(self) -> list[tuple[Any, ...]]:
        rows = await self.db.fetch(f"SELECT {DELIVERY_COLUMNS} FROM deliveries ORDER BY seq")  # noqa: S608 - constant
        return [tuple(row) for row in rows]

    async def begin(self) -> None:
        self._transaction = self.db.transaction()
        await self._transaction.start()
        await lock_appends(self.db)

    async def insert(self, events: Sequence[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        columns = list(zip(*(event[1:] for event in events), strict=True))
        rows = await self.db.fetch(
            "INSERT INTO events (store, event_id, received_at, routes, body, anonymous_id,"
            " user_id) SELECT s, e, r, ro, b, a, us FROM unnest($1::text[], $2::text[],"
            " $3::float8[], $4::text[],"
            " $5::bytea[], $6::text[], $7::text[]) WITH ORDINALITY AS u(s, e, r, ro, b, a, us, n)"
            " ORDER BY n ON CONFLICT (store, event_id) DO NOTHING RETURNING store, event_id, seq",
            *(list(column) for column in columns),
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def put(
        self, deliveries: Sequence[tuple[Any, ...]], top: dict[tuple[str, str], int]
    ) -> None:
        await self.db.executemany(
            f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7,"  # noqa: S608 - constant
            " $8, $9, $10, $11) ON CONFLICT (store, destination, seq) DO NOTHING",
            deliveries,
        )
        await self.db.executemany(
            "INSERT INTO cursors (store, destination, seq) VALUES ($1, $2, $3)"
            " ON CONFLICT (store, destination) DO UPDATE SET"
            " seq = greatest(cursors.seq, excluded.seq)",
            [(store, dest, seq) for (store, dest), seq in top.items()],
        )

    async def high_water(self) -> int:
        return int(await self.db.fetchval("SELECT coalesce(max(seq), 0) FROM events"))

    async def commit(self) -> None:
        await self._transaction.commit()
        self._transaction = None

    async def close(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()
        await self.db.close()
