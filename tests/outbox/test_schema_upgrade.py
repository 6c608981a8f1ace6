"""A seq is never handed out twice; older files are upgraded; a file with a cursor ahead of its
event log is refused at open."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from router import codec
from router.clock import FakeClock
from router.destination import DELIVERED
from router.outbox.base import NewEvent, OutboxStateError
from router.outbox.policy import RetryPolicy
from router.outbox.schema import RESCUED_REASON, SCHEMA_VERSION
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event
from tests.outbox.conftest import Query

NO_JITTER = RetryPolicy(max_attempts=3, jitter=lambda top: top)

#: The first layout, as Tagless created it before schema versions: ``seq`` without
#: AUTOINCREMENT, ``user_version`` 0.
VERSION_0_DDL = """
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    store       TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    received_at REAL    NOT NULL,
    routes      TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    UNIQUE (store, event_id)
);
CREATE TABLE cursors (
    store       TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (store, destination)
) WITHOUT ROWID;
CREATE TABLE deliveries (
    store            TEXT    NOT NULL,
    destination      TEXT    NOT NULL,
    seq              INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('retry', 'dead')),
    attempts         INTEGER NOT NULL,
    first_attempt_at REAL    NOT NULL,
    due_at           REAL,
    reason           TEXT    NOT NULL,
    last_status      INTEGER,
    detail           TEXT    NOT NULL DEFAULT '',
    updated_at       REAL    NOT NULL,
    PRIMARY KEY (store, destination, seq)
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (store, destination, state, due_at);
"""


def new(event_id: str, routes: tuple[str, ...] = ("hook",), store: str = "shop") -> NewEvent:
    body = codec.encode(make_event(event_id=event_id, store=store))
    return NewEvent(store, event_id, 1_800_000_000.0, routes, body)


def version_0_file(path: Path, *, events: list[tuple[int, NewEvent]], cursor: int) -> None:
    """An outbox file in the first layout holding ``events`` at their seqs, shop/hook at
    ``cursor``."""
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_0_DDL)
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            [
                (seq, e.store, e.event_id, e.received_at, f" {' '.join(e.routes)} ", e.body)
                for seq, e in events
            ],
        )
        db.execute("INSERT INTO cursors VALUES ('shop', 'hook', ?)", (cursor,))


def seqs(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as db:
        return [tuple(row) for row in db.execute("SELECT seq, event_id FROM events ORDER BY seq")]


async def opened(path: Path, clock: FakeClock) -> SqliteOutbox:
    box = SqliteOutbox(path, clock=clock)
    await box.open()
    return box


async def test_a_seq_is_never_handed_out_again_after_a_full_purge(
    outbox: Any, query: Query, clock: FakeClock
) -> None:
    """Once retention purged every event, the next one still gets a seq past the cursor, so
    the destination claims it."""
    await outbox.append([new("a"), new("b")])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    await outbox.settle(claim, [(item, DELIVERED) for item in claim.items], NO_JITTER)
    assert await outbox.purge("shop", ["hook"], before=clock.now() + 1e9) == 2
    await outbox.append([new("c")])
    assert await query("SELECT seq, event_id FROM events ORDER BY seq") == [(3, "c")]
    again = await outbox.claim("shop", "hook", 10)
    assert again is not None
    assert [item.event_id for item in again.items] == ["c"]


async def test_an_old_file_purged_empty_takes_new_events_past_its_cursors(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A first-layout file whose events were all purged with its cursor at 200 is upgraded:
    new events are stored after seq 200 and delivered."""
    path = tmp_path / "old.db"
    version_0_file(path, events=[], cursor=200)
    box = await opened(path, clock)
    try:
        await box.append([new("after-1"), new("after-2")])
        claim = await box.claim("shop", "hook", 10)
        assert claim is not None
        assert [(i.seq, i.event_id) for i in claim.items] == [(201, "after-1"), (202, "after-2")]
        await box.settle(claim, [(item, DELIVERED) for item in claim.items], NO_JITTER)
        [lane] = await box.status("shop", ["hook"])
        assert (lane.pending, lane.cursor) == (0, 202)
    finally:
        await box.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_an_old_file_keeps_its_events_seqs_and_de_duplication(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Upgrading keeps every event at its seq, claims go on from the cursor, a known event_id
    is still ignored, and a new event lands after the highest seq seen."""
    path = tmp_path / "old.db"
    version_0_file(path, events=[(s, new(f"e{s}")) for s in (3, 4, 7, 9)], cursor=4)
    box = await opened(path, clock)
    try:
        await box.append([new("e7"), new("fresh")])
        stored = seqs(path)
        assert stored[:4] == [(3, "e3"), (4, "e4"), (7, "e7"), (9, "e9")]
        assert stored[4][1] == "fresh" and stored[4][0] > 9
        assert len(stored) == 5
        claim = await box.claim("shop", "hook", 10)
        assert claim is not None
        assert [item.event_id for item in claim.items] == ["e7", "e9", "fresh"]
    finally:
        await box.close()


async def test_events_an_old_file_stored_behind_a_cursor_are_delivered(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The issue's aftermath: the old layout gave 50 new events seqs 1-50 behind a cursor at
    200; upgrading makes each of them due again for that destination, and only those."""
    path = tmp_path / "old.db"
    stranded = [(s, new(f"late-{s}")) for s in range(1, 51)]
    elsewhere = [(51, new("not-for-hook", routes=("other",))), (52, new("x", store="other"))]
    version_0_file(path, events=stranded + elsewhere, cursor=200)
    box = await opened(path, clock)
    try:
        claim = await box.claim("shop", "hook", 100)
        assert claim is not None and claim.is_retry
        assert sorted(item.event_id for item in claim.items) == sorted(
            e.event_id for _, e in stranded
        )
        states = await box.settle(claim, [(i, DELIVERED) for i in claim.items], NO_JITTER)
        assert set(states) == {"delivered"}
        assert await box.claim("shop", "hook", 100) is None
        await box.append([new("next")])
        nxt = await box.claim("shop", "hook", 100)
        assert nxt is not None
        assert [(i.seq, i.event_id) for i in nxt.items] == [(201, "next")]
    finally:
        await box.close()
    with sqlite3.connect(path) as db:
        reasons = db.execute("SELECT DISTINCT reason FROM deliveries").fetchall()
    assert reasons == []  # every rescued event was delivered and its row removed
    assert RESCUED_REASON == "stored_behind_cursor"


async def test_a_cursor_ahead_of_the_event_log_refuses_to_open(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A file whose log was reset below a cursor (restored in part) is refused at open with a
    message naming the cursor and the fix; after the fix it opens and goes on past it."""
    path = tmp_path / "outbox.db"
    box = await opened(path, clock)
    await box.append([new("a"), new("b"), new("c")])
    claim = await box.claim("shop", "hook", 10)
    assert claim is not None
    await box.settle(claim, [(item, DELIVERED) for item in claim.items], NO_JITTER)
    await box.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM events")
        db.execute("DELETE FROM sqlite_sequence")

    with pytest.raises(OutboxStateError) as refused:
        await opened(path, clock)
    message = str(refused.value)
    assert "store 'shop' destination 'hook' is at seq 3" in message
    assert "highest seq the event log has handed out (0)" in message
    fix = "INSERT INTO sqlite_sequence VALUES ('events', 3);"
    assert fix in message

    with sqlite3.connect(path) as db:
        db.executescript(fix)
    box = await opened(path, clock)
    try:
        await box.append([new("d")])
        claim = await box.claim("shop", "hook", 10)
        assert claim is not None
        assert [(i.seq, i.event_id) for i in claim.items] == [(4, "d")]
    finally:
        await box.close()


async def test_a_file_of_a_newer_schema_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """A file a newer Tagless wrote is not opened (nor changed) by this one."""
    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(OutboxStateError, match="written by a newer Tagless"):
        await opened(path, clock)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


#: A file of schema 2: ``events`` with AUTOINCREMENT but no person columns, and the
#: ``identities`` table identity stitching then kept.
VERSION_2_DDL = (
    VERSION_0_DDL.replace(
        "seq         INTEGER PRIMARY KEY,", "seq         INTEGER PRIMARY KEY AUTOINCREMENT,"
    )
    + """
CREATE TABLE identities (
    store   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    seen_at REAL NOT NULL,
    body    BLOB NOT NULL,
    PRIMARY KEY (store, kind, id)
) WITHOUT ROWID;
PRAGMA user_version = 2;
"""
)


def person(event_id: str, **identity: str | None) -> NewEvent:
    """An event of ``shop`` whose body carries ``identity`` (anonymous_id, user_id, ...)."""
    event = make_event(event_id=event_id, **({"user_id": None} | identity))
    return NewEvent("shop", event_id, 1_800_000_000.0, ("hook",), codec.encode(event))


def person_columns(path: Path) -> list[tuple[str, str | None, str | None]]:
    with sqlite3.connect(path) as db:
        return [
            tuple(row)
            for row in db.execute("SELECT event_id, anonymous_id, user_id FROM events ORDER BY seq")
        ]


async def test_a_version_2_file_gets_person_columns_filled_from_the_bodies(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A file of schema 2 opens at the current schema: every stored event's anonymous_id (an alias's
    previous_id) and user_id are read from its body, and the identities table is gone."""
    path = tmp_path / "v2.db"
    stored = [
        person("pv", anonymous_id="anon-1"),
        person("id", anonymous_id="anon-1", user_id="u-1"),
        person("al", user_id="u-2", previous_id="anon-2"),
        person("none"),
    ]
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_2_DDL)
        db.executemany(
            "INSERT INTO events (store, event_id, received_at, routes, body)"
            " VALUES (?, ?, ?, ?, ?)",
            [(e.store, e.event_id, e.received_at, " hook ", e.body) for e in stored],
        )
    box = await opened(path, clock)
    try:
        found = await box.person_events("shop", None, "u-1", 0.0, 10, ("$.user_id", "$.x"))
        assert [event_id for event_id, _ in found] == ["id", "pv"]
    finally:
        await box.close()
    assert person_columns(path) == [
        ("pv", "anon-1", None),
        ("id", "anon-1", "u-1"),
        ("al", "anon-2", "u-2"),
        ("none", None, None),
    ]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "identities" not in tables
    # looked up in the side file's index, not in the outbox (schema 5)
    assert not {"events_anonymous_id", "events_user_id"} & tables


async def test_a_version_0_file_gets_person_columns_filled_from_the_bodies(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The rebuild of a first-layout file fills the person columns from the bodies too."""
    path = tmp_path / "v0.db"
    version_0_file(path, events=[(4, person("a", anonymous_id="anon-1", user_id="u-1"))], cursor=0)
    await (await opened(path, clock)).close()
    assert person_columns(path) == [("a", "anon-1", "u-1")]
