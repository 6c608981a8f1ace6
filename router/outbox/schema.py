"""The outbox file's schema: create it, upgrade an older file, refuse one it cannot trust."""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Final

import structlog

from router.outbox.base import OutboxStateError
from router.outbox.migrations import SCHEMA_VERSION as SCHEMA_VERSION
from router.outbox.migrations import newer_schema_message

log = structlog.get_logger("tagless.outbox")

#: ``PRAGMA user_version`` of a file this code writes: the numbered list both backends share
#: (``router/outbox/migrations.py``). 0: the first layout, whose ``events.seq`` had no
#: AUTOINCREMENT, so SQLite handed out 1, 2, ... again once retention had purged every row.
#: 1: ``events.seq`` is AUTOINCREMENT and never goes back. 2: the ``identities`` table of
#: identity stitching (created by schema.sql on an older file, nothing else changes). 3:
#: ``events.anonymous_id`` and ``events.user_id``, indexed, where stitching looks a person's
#: earlier events up; the ``identities`` table is gone. 4: the ``attempts`` table, the log of
#: delivery attempts (created by schema.sql on an older file, nothing else changes). 5: the
#: indexes of those two columns are gone: stitching's look-up index is a side file filled
#: after the commit (``router/outbox/persons.py``).

#: An event's ``anonymous_id`` and ``user_id`` columns from its stored body (an alias without
#: an anonymous_id files its previous_id there, see ``NewEvent``).
_PERSON_FROM_BODY: Final = (
    "coalesce(json_extract(CAST(body AS TEXT), '$.anonymous_id'),"
    " json_extract(CAST(body AS TEXT), '$.previous_id')),"
    " json_extract(CAST(body AS TEXT), '$.user_id')"
)

#: Why the upgrade made an event due again for a destination (see :func:`_rescue`).
RESCUED_REASON: Final = "stored_behind_cursor"


def prepare(db: sqlite3.Connection, *, path: Path, now: float) -> int:
    """Bring the file to :data:`SCHEMA_VERSION` and check it, in one transaction.

    Returns the highest seq the event log has ever handed out. Raises
    :class:`OutboxStateError`, having changed nothing, for a file of a newer Tagless or one
    where a destination cursor is ahead of that seq (new events would land behind it).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise OutboxStateError(newer_schema_message(str(path), version))
        if version == 0 and _has_events_table(db):
            _upgrade_from_0(db, now)
        elif 0 < version < 3:
            _upgrade_to_3(db)
        _apply_schema(db)
        if 0 < version < SCHEMA_VERSION:
            _upgrade_to_5(db)
            log.warning("outbox_schema_upgraded", from_version=version, to_version=SCHEMA_VERSION)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        high = high_water(db)
        _refuse_cursors_ahead(db, path, high)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return high


def high_water(db: sqlite3.Connection) -> int:
    """The highest seq ever handed out: AUTOINCREMENT's record, or the log's top if higher."""
    row = db.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
        " coalesce((SELECT max(seq) FROM events), 0))"
    ).fetchone()
    return int(row[0])


def _has_events_table(db: sqlite3.Connection) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'")
    return found.fetchone() is not None


def _apply_schema(db: sqlite3.Connection) -> None:
    """Run schema.sql statement by statement (``executescript`` would commit first)."""
    text = resources.files("router.outbox").joinpath("schema.sql").read_text()
    statement = ""
    for line in text.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _upgrade_from_0(db: sqlite3.Connection, now: float) -> None:
    """Rebuild ``events`` with AUTOINCREMENT (SQLite cannot alter a primary key), then start
    its sequence past every seq a cursor or delivery row has seen."""
    top = int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    rescued = _rescue(db, top, now)
    db.execute("ALTER TABLE events RENAME TO events_v0")
    _apply_schema(db)
    db.execute(
        "INSERT INTO events (seq, store, event_id, received_at, routes, body, anonymous_id,"  # noqa: S608 - a constant expression
        f" user_id) SELECT seq, store, event_id, received_at, routes, body, {_PERSON_FROM_BODY}"
        " FROM events_v0"
    )
    db.execute("DROP TABLE events_v0")
    seen = db.execute(
        "SELECT max(?, coalesce((SELECT max(seq) FROM cursors), 0),"
        " coalesce((SELECT max(seq) FROM deliveries), 0))",
        (top,),
    ).fetchone()
    high = int(seen[0])
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
    db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (high,))
    log.warning("outbox_schema_upgraded", to_version=1, high_water=high, rescued=rescued)


def _upgrade_to_3(db: sqlite3.Connection) -> None:
    """Give ``events`` its ``anonymous_id`` and ``user_id`` columns, filled from the stored
    bodies, and drop the ``identities`` table they replace (schema.sql adds the indexes)."""
    db.execute("ALTER TABLE events ADD COLUMN anonymous_id TEXT")
    db.execute("ALTER TABLE events ADD COLUMN user_id TEXT")
    db.execute(f"UPDATE events SET (anonymous_id, user_id) = ({_PERSON_FROM_BODY})")  # noqa: S608 - a constant expression
    db.execute("DROP TABLE IF EXISTS identities")
    log.warning("outbox_schema_upgraded", to_version=3)


def _upgrade_to_5(db: sqlite3.Connection) -> None:
    """Drop the indexes of ``events.anonymous_id`` and ``events.user_id``: stitching looks
    them up in a side file now (``router/outbox/persons.py``), which indexes the events it
    has not seen, every one the first time."""
    db.execute("DROP INDEX IF EXISTS events_anonymous_id")
    db.execute("DROP INDEX IF EXISTS events_user_id")


def _rescue(db: sqlite3.Connection, top: int, now: float) -> int:
    """Make events stored behind a destination's cursor due again; return how many.

    A cursor above the log's top means every event up to it was purged; the old layout then
    gave new events seqs at or below the cursor, where no claim looks. Each such event of the
    cursor's store routed to that destination, with no row of its own there, becomes a retry
    due now. An older event kept only by another destination's row may be among them and go
    out twice: at least once, with the same event_id.
    """
    cursor = db.execute(
        "INSERT INTO deliveries (store, destination, seq, state, attempts, first_attempt_at,"
        " due_at, reason, last_status, detail, updated_at)"
        " SELECT c.store, c.destination, e.seq, 'retry', 0, ?1, ?1, ?2, NULL, '', ?1"
        " FROM cursors c JOIN events e ON e.store = c.store AND e.seq <= c.seq"
        " WHERE c.seq > ?3 AND (instr(e.routes, ' ' || c.destination || ' ') > 0"
        " OR instr(e.routes, ' ' || c.destination || '! ') > 0)"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.store = c.store"
        " AND d.destination = c.destination AND d.seq = e.seq)",
        (now, RESCUED_REASON, top),
    )
    return int(cursor.rowcount)


def _refuse_cursors_ahead(db: sqlite3.Connection, path: Path, high: int) -> None:
    ahead = db.execute(
        "SELECT store, destination, seq FROM cursors WHERE seq > ? ORDER BY seq DESC, store,"
        " destination",
        (high,),
    ).fetchall()
    if not ahead:
        return
    store, destination, seq = ahead[0]
    more = f" (and {len(ahead) - 1} more)" if len(ahead) > 1 else ""
    fix = (
        "DELETE FROM sqlite_sequence WHERE name = 'events';"  # noqa: S608 - shown, not run
        f" INSERT INTO sqlite_sequence VALUES ('events', {seq});"
    )
    raise OutboxStateError(
        f"outbox {path}: the cursor of store {store!r} destination {destination!r} is at seq"
        f" {seq}{more}, ahead of the highest seq the event log has handed out ({high}): new"
        " events would be stored behind it and never delivered. The file was restored or"
        " edited in part. Restore the whole file from one backup; or, with Tagless stopped,"
        " take what is stored up to the cursors as settled and raise the log's high-water"
        f' mark: sqlite3 {shlex.quote(str(path))} "{fix}"'
    )
