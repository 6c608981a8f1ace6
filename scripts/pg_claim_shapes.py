"""Measure the two ways several nodes can share delivery on PostgreSQL, on a throwaway
database: a cursor per destination held under a lease (the SQLite shape), or one queue row per
(event, destination) claimed with FOR UPDATE SKIP LOCKED. Prints rows/s for ingest and for
claim + settle. Usage: python scripts/pg_claim_shapes.py [postgresql://server] [events]."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import asyncpg

SERVER = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432"
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 60_000
DESTINATIONS = ("meta", "ga4", "hook")
BATCH = 500  # events per ingest commit and per claim
BODY = b'{"name":"purchase","event_id":"x","value":"12.50","currency":"EUR"}' * 8

SCHEMA = """
CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, store TEXT NOT NULL, event_id TEXT NOT NULL,
    received_at FLOAT8 NOT NULL, routes TEXT NOT NULL, body BYTEA NOT NULL,
    UNIQUE (store, event_id));
CREATE INDEX ON events (store, seq);
CREATE TABLE cursors (store TEXT, destination TEXT, seq BIGINT, PRIMARY KEY (store, destination));
CREATE TABLE queue (seq BIGINT NOT NULL, destination TEXT NOT NULL, leased_until FLOAT8 NOT NULL
    DEFAULT 0, PRIMARY KEY (destination, seq));
"""
INSERT = (
    "INSERT INTO events (store, event_id, received_at, routes, body) SELECT 'shop', e, 0,"
    " ' meta ga4 hook ', $2 FROM unnest($1::text[]) AS e RETURNING seq"
)


async def ingest(db: asyncpg.Connection, queue_rows: bool) -> float:
    started = time.perf_counter()
    for _ in range(0, EVENTS, BATCH):
        ids = [f"{uuid.uuid4().hex}" for _ in range(BATCH)]
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(1)")
            seqs = [r[0] for r in await db.fetch(INSERT, ids, BODY)]
            if queue_rows:
                await db.execute(
                    "INSERT INTO queue (seq, destination) SELECT s, d FROM unnest($1::bigint[])"
                    " AS s CROSS JOIN unnest($2::text[]) AS d",
                    seqs,
                    list(DESTINATIONS),
                )
    return EVENTS / (time.perf_counter() - started)


async def drain_cursor(pool: asyncpg.Pool, destination: str) -> int:
    done = 0
    async with pool.acquire() as db:
        position = 0
        while True:
            rows = await db.fetch(
                "SELECT seq, body FROM events WHERE store = 'shop' AND seq > $1"
                " AND strpos(routes, $2) > 0 ORDER BY seq LIMIT $3",
                position,
                f" {destination} ",
                BATCH,
            )
            if not rows:
                return done
            position = rows[-1][0]
            await db.execute(
                "INSERT INTO cursors VALUES ('shop', $1, $2) ON CONFLICT (store, destination)"
                " DO UPDATE SET seq = excluded.seq",
                destination,
                position,
            )
            done += len(rows)


async def drain_queue(pool: asyncpg.Pool, destination: str) -> int:
    done = 0
    async with pool.acquire() as db:
        while True:
            rows = await db.fetch(
                "WITH c AS (UPDATE queue q SET leased_until = extract(epoch FROM now()) + 60"
                " FROM (SELECT seq FROM queue WHERE destination = $1 AND leased_until <"
                " extract(epoch FROM now()) ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED) s"
                " WHERE q.destination = $1 AND q.seq = s.seq RETURNING q.seq)"
                " SELECT e.seq, e.body FROM c JOIN events e ON e.seq = c.seq",
                destination,
                BATCH,
            )
            if not rows:
                return done
            await db.execute(
                "DELETE FROM queue WHERE destination = $1 AND seq = ANY($2::bigint[])",
                destination,
                [r[0] for r in rows],
            )
            done += len(rows)


async def deliver(pool: asyncpg.Pool, drain: object, workers_per_destination: int) -> float:
    started = time.perf_counter()
    jobs = [
        drain(pool, d)  # type: ignore[operator]
        for d in DESTINATIONS
        for _ in range(workers_per_destination)
    ]
    done = sum(await asyncio.gather(*jobs))
    return done / (time.perf_counter() - started)


async def main() -> None:
    name = f"tagless_shapes_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        for shape in ("cursor", "skip_locked"):
            pool = await asyncpg.create_pool(f"{SERVER}/{name}", min_size=4, max_size=8)
            async with pool.acquire() as db:
                await db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                await db.execute(SCHEMA)
                rate = await ingest(db, queue_rows=shape == "skip_locked")
            if shape == "cursor":
                out = await deliver(pool, drain_cursor, 1)
            else:
                out = await deliver(pool, drain_queue, 2)
            print(
                f"{shape:12} ingest {rate:9,.0f} events/s   claim+settle {out:9,.0f}"
                f" rows/s ({len(DESTINATIONS)} destinations, {EVENTS:,} events)"
            )
            await pool.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
