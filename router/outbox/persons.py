"""Identity stitching's look-up index of the SQLite outbox, kept in a side file off the ack path.

The outbox stores each event's ``anonymous_id`` and ``user_id`` beside its body (for stores
that stitch), unindexed: indexing them in the commit that acknowledges the event cost more
than the rest of the commit (two random-key B-trees, their pages rewritten in the WAL and
fsynced on every group commit; measured by ``bench/commit_micro.py``). This module keeps the
index in a second SQLite file next to the outbox (``<outbox>-stitching``), filled in large
batches after the commit, in one statement each, without fsync on the ack path:

- ``anonymous_ids`` and ``user_ids``: ``(store, id, seq)``, the events of a person's id;
- ``state.mark``: every event with ``seq <= mark`` is indexed (the outbox commits in seq
  order, so a high-water mark is enough).

The index is derived data: a missing or unreadable file is rebuilt from the outbox, and a
mark above every seq the outbox has handed out (a restored outbox beside a newer index) starts
it again from nothing. Entries are checked against the events' own columns on every look-up,
so an entry left by an erased, stripped or purged event never matches; :meth:`prune` deletes
such entries, for they hold the ids themselves.

A look-up first indexes whatever was committed since the mark (usually nothing: the main
process indexes every second), so it sees every committed event, as before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import sqlite3
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import structlog

from router.outbox.base import OutboxUnavailable

log = structlog.get_logger("tagless.outbox")

#: The side file's name: the outbox file's, with this appended.
SUFFIX: Final = "-stitching"
#: Above every seq: :meth:`PersonIndex.prune` over the whole index.
ALL_SEQS: Final = 2**62
#: Events indexed per transaction at most (a backlog restored from a backup goes in steps).
STEP: Final = 200_000
#: The side file's page cache. Measured on an index of a million events with random ids (a
#: new visitor per event, 69 MB): a 50k-event pass took 0.47 s with 8 MiB, 0.34 s with 64 MiB
#: (and 40 MiB more RSS, growing with the index); the file is in the OS page cache anyway.
CACHE_KIB: Final = 16_384
#: How long a pass or a look-up waits for another process's pass to end.
BUSY_TIMEOUT_MS: Final = 5000
#: Tries at truncating the side file's WAL while another process reads it.
CHECKPOINT_TRIES: Final = 50

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS anonymous_ids (
    store TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (store, id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_ids (
    store TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (store, id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (one INTEGER PRIMARY KEY CHECK (one = 1), mark INTEGER NOT NULL);
INSERT OR IGNORE INTO state (one, mark) VALUES (1, 0);
"""
_TABLES: Final = {"anonymous_id": "anonymous_ids", "user_id": "user_ids"}
#: SQLITE_CORRUPT and SQLITE_NOTADB: what makes the side file worth building again (never a
#: busy or locked file: another process may be indexing into it).
_CORRUPT: Final = (11, 26)

#: A person's events: same anonymous_id or user_id, or the other id of an event carrying both
#: (one level of linking). Every branch walks the index newest first and stops at the limit,
#: so an id shared by thousands of events (a sender's constant anonymousId) costs no more than
#: a customer's; each entry is checked against its event's own columns (an erased or stripped
#: event no longer carries the id), and received_at keeps it to the window. ``+store`` keeps
#: SQLite from reading a store's events by the (store, event_id) index instead of by seq.
_PERSON_EVENTS: Final = """
WITH own AS (
    SELECT seq, anonymous_id, user_id FROM o.events WHERE seq IN (SELECT seq FROM anonymous_ids
            WHERE store = ?1 AND id = ?2 ORDER BY seq DESC LIMIT ?5)
        AND +store = ?1 AND anonymous_id = ?2 AND received_at >= ?4
    UNION
    SELECT seq, anonymous_id, user_id FROM o.events WHERE seq IN (SELECT seq FROM user_ids
            WHERE store = ?1 AND id = ?3 ORDER BY seq DESC LIMIT ?5)
        AND +store = ?1 AND user_id = ?3 AND received_at >= ?4
)
SELECT event_id, json_extract(CAST(body AS TEXT), {paths}) FROM o.events WHERE seq IN (
    SELECT seq FROM own
    UNION
    SELECT e.seq FROM (SELECT DISTINCT anonymous_id AS id FROM own
            WHERE anonymous_id IS NOT NULL AND anonymous_id IS NOT ?2) AS linked
        JOIN o.events AS e ON e.seq IN (SELECT seq FROM anonymous_ids WHERE store = ?1
            AND id = linked.id ORDER BY seq DESC LIMIT ?5)
        AND +e.store = ?1 AND e.anonymous_id = linked.id AND e.received_at >= ?4
    UNION
    SELECT e.seq FROM (SELECT DISTINCT user_id AS id FROM own
            WHERE user_id IS NOT NULL AND user_id IS NOT ?3) AS linked
        JOIN o.events AS e ON e.seq IN (SELECT seq FROM user_ids WHERE store = ?1
            AND id = linked.id ORDER BY seq DESC LIMIT ?5)
        AND +e.store = ?1 AND e.user_id = linked.id AND e.received_at >= ?4
) ORDER BY seq DESC LIMIT ?5
"""

#: The events of one of a store's ids, newest first (the admin pages' event finder).
_SEQS_OF: Final = "SELECT seq FROM {table} WHERE store = ? AND id = ? ORDER BY seq DESC LIMIT ?"


def _uri(path: Path, query: str = "") -> str:
    """``path`` as an SQLite URI (``?mode=ro`` and the like need one)."""
    return "file:" + urllib.parse.quote(str(path.absolute())) + query


@functools.lru_cache(maxsize=4)
def person_events_sql(paths: int) -> str:
    """:data:`_PERSON_EVENTS` reading ``paths`` (two or more) JSON paths of each body, bound
    from the sixth parameter on: json_extract answers them as one JSON array."""
    if paths < 2:
        raise ValueError(f"{paths} JSON paths; json_extract answers an array for two or more")
    return _PERSON_EVENTS.format(paths=", ".join(f"?{n}" for n in range(6, 6 + paths)))


class PersonIndex:
    """The side file of one outbox file, used from one thread of its own.

    Any process may index (the file has its own write lock, apart from the outbox's); the
    main process does every second (:meth:`catch_up`), a look-up does first when the mark is
    behind. Nothing is opened until first used.
    """

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.path = outbox.with_name(outbox.name + SUFFIX)
        self._db: sqlite3.Connection | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None

    # -- in the event loop -------------------------------------------------------------------

    async def _run(self, job: Any, *args: Any) -> Any:
        """Run ``job`` in the index's thread; an SQLite error is the outbox's (callers catch
        :class:`OutboxError` as they do for the outbox file itself)."""
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(1, "tagless-stitching")
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, self._guarded, job, *args
            )
        except sqlite3.Error as error:
            raise OutboxUnavailable(f"stitching index {self.path}: {error}") from error

    async def catch_up(self) -> int:
        """Index every event committed past the mark; return how many events were read."""
        indexed: int = await self._run(self._catch_up)
        return indexed

    async def lookup(self, params: tuple[Any, ...], paths: int) -> list[tuple[str, str]]:
        """A person's latest events, reading ``paths`` JSON paths of each: ``params`` are
        :data:`_PERSON_EVENTS`'s (store, anonymous_id, user_id, since, limit, *paths); see
        :meth:`router.outbox.base.Outbox.person_events`. Every committed event counts."""
        found: list[tuple[str, str]] = await self._run(
            self._query, person_events_sql(paths), params
        )
        return found

    async def seqs_of(self, kind: str, store: str, value: str, limit: int) -> list[int]:
        """The seqs of a store's events with this ``anonymous_id`` or ``user_id``, newest
        first (entries of erased events included: the caller reads the events)."""
        sql = _SEQS_OF.format(table=_TABLES[kind])
        rows: list[tuple[int]] = await self._run(self._query, sql, (store, value, limit))
        return [seq for (seq,) in rows]

    async def prune(self, lo: int, hi: int) -> int:
        """Delete the entries of events with ``lo <= seq <= hi`` that are gone or no longer
        carry the id (purged, stripped by retention, erased: the ids must go everywhere);
        return how many. One pass over the index, the events read only in that range."""
        pruned: int = await self._run(self._prune, lo, hi)
        return pruned

    def files(self) -> list[Path]:
        """The side file and its WAL (an erasure searches them for the erased bytes)."""
        return [self.path, self.path.with_name(self.path.name + "-wal")]

    async def checkpoint(self) -> bool:
        """Copy the WAL into the file and truncate it; False if readers kept it busy."""
        done: bool = await self._run(self._checkpoint)
        return done

    async def vacuum(self) -> None:
        """Rewrite the file without its free pages (after an erasure left bytes in them)."""
        await self._run(lambda: self._connect().execute("VACUUM"))

    async def close(self) -> None:
        """Close the file and stop the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(RuntimeError):
            await asyncio.get_running_loop().run_in_executor(thread, self._close)
        thread.shutdown(wait=True)

    # -- in the index's thread ---------------------------------------------------------------

    def _guarded(self, job: Any, *args: Any) -> Any:
        """Run ``job``; a side file found corrupt (or not a database) is derived data: it is
        deleted and built again from the outbox, and ``job`` runs once more."""
        try:
            return job(*args)
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF not in _CORRUPT:
                raise
            log.warning("stitching_index_rebuilt", path=str(self.path), error=str(error))
            self._close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
        return job(*args)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            _uri(self.path), uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            # derived data: a commit lost to a power cut is indexed again from the outbox
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA secure_delete=ON")  # a pruned id leaves no bytes behind
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            db.executescript(_SCHEMA)
            # read-only: BEGIN IMMEDIATE write-locks every attached database it may write, and
            # the outbox's write lock is the ack commit's
            db.execute("ATTACH DATABASE ? AS o", (_uri(self.outbox, "?mode=ro"),))
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self._catch_up()
        return self._connect().execute(sql, params).fetchall()

    def _catch_up(self) -> int:
        db = self._connect()
        mark = int(db.execute("SELECT mark FROM state").fetchone()[0])
        top = int(db.execute("SELECT coalesce(max(seq), 0) FROM o.events").fetchone()[0])
        if top <= mark and not self._behind_restored(db, mark):
            return 0
        read = 0
        while True:
            # write-lock the side file first (never the outbox: it is only read), then read
            # the mark and the outbox in one transaction, so that two processes indexing at
            # once take turns instead of failing on a stale snapshot
            db.execute("BEGIN IMMEDIATE")
            try:
                mark = int(db.execute("SELECT mark FROM state").fetchone()[0])
                if self._behind_restored(db, mark):
                    log.warning("stitching_index_rebuilt", path=str(self.path), mark=mark)
                    db.execute("DELETE FROM anonymous_ids")
                    db.execute("DELETE FROM user_ids")
                    mark = 0
                top = int(db.execute("SELECT coalesce(max(seq), 0) FROM o.events").fetchone()[0])
                upto = min(top, mark + STEP)
                for column, table in _TABLES.items():
                    db.execute(
                        f"INSERT OR IGNORE INTO {table} (store, id, seq) SELECT store, {column},"  # noqa: S608 - constant names
                        f" seq FROM o.events WHERE seq > ? AND seq <= ? AND {column} IS NOT NULL",
                        (mark, upto),
                    )
                db.execute("UPDATE state SET mark = ?", (max(mark, upto),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            read += max(0, upto - mark)
            if upto >= top:
                return read

    @staticmethod
    def _behind_restored(db: sqlite3.Connection, mark: int) -> bool:
        """Whether the mark is past every seq the outbox has handed out: the outbox was
        restored from an older copy, and its new events would come in under the mark."""
        if mark == 0:
            return False
        row = db.execute("SELECT seq FROM o.sqlite_sequence WHERE name = 'events'").fetchone()
        return mark > (int(row[0]) if row else 0)

    def _prune(self, lo: int, hi: int) -> int:
        db = self._connect()
        pruned = 0
        for column, table in _TABLES.items():
            cursor = db.execute(
                f"DELETE FROM {table} WHERE seq >= ?1 AND seq <= ?2 AND NOT EXISTS (SELECT 1"  # noqa: S608 - constant names
                f" FROM o.events e WHERE e.seq = {table}.seq AND e.store = {table}.store"
                f" AND e.{column} = {table}.id)",
                (lo, hi),
            )
            pruned += cursor.rowcount
        return pruned

    def _checkpoint(self) -> bool:
        db = self._connect()
        for _ in range(CHECKPOINT_TRIES):
            row = db.execute("PRAGMA main.wal_checkpoint(TRUNCATE)").fetchone()
            if row is not None and int(row[0]) == 0:
                return True
            time.sleep(0.1)
        return False

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
