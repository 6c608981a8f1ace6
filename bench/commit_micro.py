"""Micro-benchmark: what the outbox's indexes cost a group commit, on this machine's disk.

Inserts transactions of ``--rows`` events (random messageIds, customers drawn from 5,000, as
the bench's) into the events table of router/outbox/schema.sql, in WAL mode with
``synchronous=FULL`` and SQLite's default autocheckpoint, as Tagless commits, three ways: with
the two stitching indexes in the commit (as before schema 5 moved them to a side file filled
after it, router/outbox/persons.py), as shipped (UNIQUE (store, event_id) only), and with no
secondary index (the bare reference's table). Each random key lands on
its own leaf page once the table outgrows a commit, and every page a commit dirties is written
to the WAL and later checkpointed into the database: the figures show what that costs.

    .venv/bin/python bench/commit_micro.py --commits 1500 --rows 100

``--ids sequential`` gives every event an id that sorts after the previous one's, as
``make bench`` did before it sent random ids: such an index grows at one end and a commit
rewrites a handful of its pages, whatever the table's size.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

SCHEMA = Path(__file__).parent.parent / "router" / "outbox" / "schema.sql"
INSERT = (
    "INSERT INTO events (store, event_id, received_at, routes, body, anonymous_id, user_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
#: The indexes schema 4 kept in the outbox file, maintained by every ack commit.
STITCHING = (
    "CREATE INDEX events_anonymous_id ON events (store, anonymous_id)"
    " WHERE anonymous_id IS NOT NULL;"
    " CREATE INDEX events_user_id ON events (store, user_id) WHERE user_id IS NOT NULL;"
)
VARIANTS = {
    "with the stitching indexes (schema 4)": lambda schema: schema + STITCHING,
    "as shipped": lambda schema: schema,
    "no secondary index": lambda schema: schema.replace(
        "UNIQUE (store, event_id)", "CHECK (seq > 0)"
    ),
}


def run(
    schema: str, path: Path, commits: int, rows: int, *, sequential: bool = False
) -> tuple[float, float, float]:
    """The INSERT's median ms and the COMMIT's median and 99th percentile ms per transaction
    (the first third, while the table is small, left out)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    rng = random.Random(1)
    customers = [(str(uuid.UUID(int=rng.getrandbits(128))), f"user-{n}") for n in range(5000)]
    body = os.urandom(330).hex().encode()  # a stored bench event is ~660 bytes
    inserts, commits_ms = [], []
    for n in range(commits):
        batch = []
        for _ in range(rows):
            anonymous_id, user_id = rng.choice(customers)
            event_id = (
                f"run-1-{n * rows + len(batch)}"  # post.lua's shape: prefix, counter
                if sequential
                else str(uuid.UUID(int=rng.getrandbits(128)))
            )
            batch.append(("bench", event_id, time.time(), " hook ", body, anonymous_id, user_id))
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.executemany(INSERT, batch)
        inserted = time.perf_counter()
        db.execute("COMMIT")
        done = time.perf_counter()
        if n >= commits // 3:
            inserts.append((inserted - started) * 1e3)
            commits_ms.append((done - inserted) * 1e3)
    db.close()
    p99 = statistics.quantiles(commits_ms, n=100)[98]
    return statistics.median(inserts), statistics.median(commits_ms), p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=1500)
    parser.add_argument("--rows", type=int, default=100, help="events per commit")
    parser.add_argument(
        "--ids",
        choices=("random", "sequential"),
        default="random",
        help="random UUIDs, as SDKs send (default), or ids in the order sent",
    )
    args = parser.parse_args()
    schema = SCHEMA.read_text()
    print(f"{args.commits} commits of {args.rows} events, {args.ids} ids; the last two thirds")
    for name, variant in VARIANTS.items():
        with tempfile.TemporaryDirectory(prefix="commit-micro-") as tmp:
            insert, commit, p99 = run(
                variant(schema),
                Path(tmp) / "o.db",
                args.commits,
                args.rows,
                sequential=args.ids == "sequential",
            )
        print(f"{name:>30}: INSERT {insert:6.2f} ms, COMMIT {commit:6.2f} ms (p99 {p99:6.2f})")


if __name__ == "__main__":
    main()
