"""Stitching's look-up index of the SQLite outbox: a side file filled after the commit, never
behind a look-up, rebuilt when it cannot be trusted, and cleared of erased or stripped ids."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from dispatch_kit import NO_JITTER

from router.clock import FakeClock
from router.destination import DELIVERED
from router.ops.erase import erase
from router.outbox import persons
from router.outbox.base import NewEvent, OutboxUnavailable
from router.outbox.sqlite import SqliteOutbox

PATHS = ("$.anonymous_id", "$.user_id")


def event(event_id: str, anonymous_id: str | None, user_id: str | None = None) -> NewEvent:
    body = f'{{"anonymous_id": "{anonymous_id}", "user_id": "{user_id}"}}'.encode()
    return NewEvent("shop", event_id, 1000.0, ("hook",), body, anonymous_id, user_id)


def entries(outbox: SqliteOutbox) -> list[tuple[str, str, int]]:
    """Every entry of the side file: (table, id, seq)."""
    with sqlite3.connect(outbox.persons.path) as db:
        return [
            (table, row[0], row[1])
            for table in ("anonymous_ids", "user_ids")
            for row in db.execute(f"SELECT id, seq FROM {table} ORDER BY seq")  # noqa: S608 - constant names
        ]


async def found(outbox: SqliteOutbox, anonymous_id: str | None, user_id: str | None) -> list[str]:
    rows = await outbox.person_events("shop", anonymous_id, user_id, 0.0, 10, PATHS)
    return [event_id for event_id, _ in rows]


async def test_the_ack_commit_leaves_the_index_to_later(outbox: SqliteOutbox) -> None:
    """An append writes nothing to the side file; the main process's round indexes it, each
    event once, and a second round reads nothing."""
    await outbox.append([event("a", "anon-1"), event("b", None, "u-1")])
    assert not outbox.persons.path.exists()
    assert await outbox.index_persons() == 2
    assert entries(outbox) == [("anonymous_ids", "anon-1", 1), ("user_ids", "u-1", 2)]
    assert await outbox.index_persons() == 0


async def test_a_look_up_sees_every_committed_event_without_waiting_for_the_round(
    outbox: SqliteOutbox, tmp_path: Path, clock: FakeClock
) -> None:
    """Events committed by another process since the last round are indexed by the look-up
    itself, and one link further (an identify carrying both ids) is followed."""
    await outbox.append([event("pv", "anon-1")])
    await outbox.index_persons()
    other = SqliteOutbox(outbox.path, clock=clock)
    await other.open()
    try:
        await other.append([event("identify", "anon-1", "u-1"), event("order", None, "u-1")])
    finally:
        await other.close()
    assert await found(outbox, None, "u-1") == ["order", "identify", "pv"]


async def opened(path: Path, clock: FakeClock) -> SqliteOutbox:
    box = SqliteOutbox(path, clock=clock)
    await box.open()
    return box


async def test_an_index_ahead_of_a_restored_outbox_is_rebuilt(
    tmp_path: Path, clock: FakeClock
) -> None:
    """An outbox restored from an older copy hands out seqs the index has marked done: the
    index starts again from nothing, and the restored outbox's new events are found."""
    path, copy = tmp_path / "outbox.db", tmp_path / "copy.db"
    box = await opened(path, clock)
    await box.append([event("a", "anon-1")])
    await box.close()
    shutil.copy(path, copy)  # the backup, one event in
    box = await opened(path, clock)
    await box.append([event("b", "anon-2"), event("c", "anon-3")])
    await box.index_persons()
    await box.close()
    shutil.copy(copy, path)  # restored beside the newer index (mark 3)
    box = await opened(path, clock)
    try:
        await box.append([event("d", "anon-4")])  # seq 2, under the stale mark
        assert await found(box, "anon-4", None) == ["d"]
        assert await found(box, "anon-2", None) == []
        assert [entry[1] for entry in entries(box)] == ["anon-1", "anon-4"]
    finally:
        await box.close()


async def test_an_unreadable_index_is_rebuilt_from_the_outbox(
    tmp_path: Path, clock: FakeClock
) -> None:
    box = await opened(tmp_path / "outbox.db", clock)
    await box.append([event("a", "anon-1")])
    await box.close()
    box.persons.path.write_bytes(b"not a database" * 1000)
    box = await opened(tmp_path / "outbox.db", clock)
    try:
        assert await found(box, "anon-1", None) == ["a"]
    finally:
        await box.close()


async def test_an_erased_id_leaves_the_index_and_its_file(outbox: SqliteOutbox) -> None:
    """Erasure deletes the id's entries and checks the side file's bytes too."""
    await outbox.append([event("a", "anon-secret-7"), event("b", "anon-other")])
    await outbox.index_persons()
    answer = await erase(outbox, ["shop"], "anonymous_id", "anon-secret-7")
    assert answer["traces"] == [] and answer["stores"][0]["events"] == 1
    assert [entry[1] for entry in entries(outbox)] == ["anon-other"]
    for path in outbox.persons.files():
        assert not path.exists() or b"anon-secret-7" not in path.read_bytes()
    assert await found(outbox, "anon-secret-7", None) == []


async def test_retention_strips_the_ids_from_the_index_too(
    outbox: SqliteOutbox, clock: FakeClock
) -> None:
    """Delivered events past the user-data age lose their ids in the outbox and the index."""
    await outbox.append([event("a", "anon-1"), event("b", None, "u-1")])
    await outbox.index_persons()
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    await outbox.settle(claim, [(item, DELIVERED) for item in claim.items], NO_JITTER)
    stripped = await outbox.scrub_delivered("shop", ["hook"], before=clock.now() + 1)
    assert stripped == 2
    assert entries(outbox) == []
    assert await found(outbox, "anon-1", "u-1") == []


async def test_the_event_finder_reads_a_stitching_stores_ids_from_the_index(
    outbox: SqliteOutbox,
) -> None:
    """The admin pages' look-up by user id or anonymous id goes through the index (and its
    catch-up), newest first; an id no event carries any more finds nothing."""
    await outbox.append([event("a", "anon-1", "u-1"), event("b", "anon-2", "u-1")])
    by_user = await outbox.insight.events_by("user_id", "shop", "u-1", 10)
    assert [row[2] for row in by_user] == ["b", "a"]
    assert outbox.persons.path.exists()  # found through the index, not by reading bodies
    by_anon = await outbox.insight.events_by("anonymous_id", "shop", "anon-1", 10)
    assert [row[2] for row in by_anon] == ["a"]
    assert await outbox.insight.events_by("user_id", "shop", "u-2", 10) == []


async def test_indexing_never_takes_the_outboxs_write_lock(outbox: SqliteOutbox) -> None:
    """The side file is written while the outbox is only read: with another connection
    holding the outbox's write lock, a catch-up still indexes, and erasure's checkpoint of
    the side file leaves the outbox's WAL alone."""
    await outbox.append([event("a", "anon-1")])
    with contextlib.closing(sqlite3.connect(outbox.path, isolation_level=None)) as other:
        other.execute("PRAGMA busy_timeout=0")
        other.execute("BEGIN IMMEDIATE")  # a committing writer, holding the lock
        outbox.persons._connect().execute("PRAGMA busy_timeout=0")
        try:
            assert await outbox.index_persons() == 1
            assert await outbox.persons.checkpoint()
        finally:
            other.execute("ROLLBACK")


async def test_a_side_file_busy_in_another_process_is_waited_for_never_rebuilt(
    outbox: SqliteOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's long pass holds the side file: the look-up fails for now (the event
    goes unstitched, as any outbox error makes it), and the index and its entries stay."""
    await outbox.append([event("a", "anon-1")])
    await outbox.index_persons()
    await outbox.close()
    monkeypatch.setattr(persons, "BUSY_TIMEOUT_MS", 50)
    box = SqliteOutbox(outbox.path)
    await box.open()
    await box.append([event("b", "anon-1")])
    try:
        with contextlib.closing(sqlite3.connect(box.persons.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(OutboxUnavailable, match="locked"):
                await found(box, "anon-1", None)
            other.execute("ROLLBACK")
        assert [entry[1] for entry in entries(box)] == ["anon-1"]  # kept, not rebuilt
        assert await found(box, "anon-1", None) == ["b", "a"]
    finally:
        await box.close()


async def test_an_erasure_cleans_ids_an_earlier_one_left_in_the_index(
    outbox: SqliteOutbox,
) -> None:
    """An erasure whose index pass failed after its events were scrubbed left the id in the
    side file: the next erasure of that id finds it there byte by byte and prunes the whole
    index before compacting it."""
    await outbox.append([event("a", "anon-secret-8"), event("b", "anon-other")])
    await outbox.index_persons()
    with contextlib.closing(sqlite3.connect(outbox.path, isolation_level=None)) as db:
        db.execute("UPDATE events SET anonymous_id = NULL, body = x'7b7d' WHERE event_id = 'a'")
    answer = await erase(outbox, ["shop"], "anonymous_id", "anon-secret-8")
    assert answer["stores"][0]["events"] == 0 and answer["compacted"]
    assert answer["traces"] == []
    assert [entry[1] for entry in entries(outbox)] == ["anon-other"]
