"""``tagless erase`` end to end: a person's events in every outbox state are scrubbed, other
people's are untouched, platforms already sent to are reported, the audit record holds no
identity, and the database file and its WAL hold no byte of the identity afterwards."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import orjson
import pytest
from cli_ops_kit import DAY, HOUR, run, settle_all, stored

from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.sqlite import SqliteOutbox

JANE = "jane.doe@example.com"
OTHER = {"emails": ("max@example.org",), "user_id": "customer-7", "anonymous_id": "anon-max"}
DEAD = Outcome("rejected", "http_400", 400, detail=f'{{"error": "bad user {JANE}"}}')
RETRY = Outcome("retry", "http_503", 503)

#: Erasure searches the SQLite file and its WAL byte by byte.
pytestmark = pytest.mark.sqlite_only


def populate(path: Path) -> None:
    """Jane's events: delivered to both destinations, a dead letter for meta (whose answer
    echoed her email), a retry for meta, pending for archive, one purged by retention before
    (its bytes left in free pages), her email in a property of another; Max's events beside."""
    now = time.time()

    def event(event_id: str, age: float, routes: tuple[str, ...], **fields: object) -> NewEvent:
        fields.setdefault("anonymous_id", "anon-jane")
        body = stored(event_id, now - age, **fields)
        anonymous_id = str(fields["anonymous_id"])
        return NewEvent("shop", event_id, now - age, routes, body, anonymous_id, None)

    async def fill() -> None:
        box = SqliteOutbox(path, clock=FakeClock(now))
        await box.open()
        try:
            fillers = [event(f"max-old-{n}", 8 * DAY, ("archive",), **OTHER) for n in range(20)]
            await box.append([event("jane-purged", 9 * DAY, ("archive",)), *fillers])
            await settle_all(box, "archive", RETRY, only=())
            await box.append(
                [
                    event("jane-sent", 3 * HOUR, ("archive", "meta")),
                    event("jane-dead", 2 * HOUR, ("meta",)),
                    event("jane-retry", 2 * HOUR, ("meta",)),
                    event("max-1", 2 * HOUR, ("archive", "meta"), **OTHER),
                    event(
                        "max-mentions-jane",
                        HOUR,
                        ("archive",),
                        **OTHER,
                        properties={"referred_by": JANE.upper()},
                    ),
                ]
            )
            await settle_all(box, "archive", RETRY, only=())
            claim = await box.claim("shop", "meta", 100)
            assert claim is not None
            by_id = {"jane-dead": DEAD, "jane-retry": RETRY}
            outcomes = [(i, by_id.get(i.event_id, DELIVERED)) for i in claim.items]
            await box.settle(claim, outcomes, RetryPolicy())
            await box.append([event("jane-pending", HOUR / 2, ("archive",))])
        finally:
            await box.close()

    asyncio.run(fill())
    # retention purged Jane's oldest event on a SQLite built without secure_delete (Debian's
    # has it on by default): her bytes stay in the page's free space
    db = sqlite3.connect(path)
    db.execute("PRAGMA secure_delete = OFF")
    with db:
        db.execute("DELETE FROM events WHERE event_id = 'jane-purged'")
        # a table a later schema may add (the attempts log) holding her address in its text
        db.execute("CREATE TABLE later_log (id INTEGER PRIMARY KEY, answer TEXT, n INTEGER)")
        db.execute(
            "INSERT INTO later_log (answer, n) VALUES (?, 1), ('nothing', 2)", (f"no {JANE}",)
        )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def files(config_dir: Path) -> list[Path]:
    return sorted(config_dir.glob("tagless.db*"))


def holds(config_dir: Path, needle: str) -> list[str]:
    """The outbox files (database, WAL, shared memory, audit log) holding ``needle``, any case."""
    return [p.name for p in files(config_dir) if needle.lower().encode() in p.read_bytes().lower()]


def test_erase_by_email_leaves_no_byte_of_it_and_reports_what_platforms_have(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the email is in the database (also in free pages of a purged event). After:
    neither it nor its SHA-256 is in the database or WAL, even while another connection
    (a running Tagless) has the file open; Jane's pending, retry and dead letter are gone;
    the destinations she was sent to are named; Max's events are untouched."""
    db = config_dir / "tagless.db"
    populate(db)
    live = len(
        sqlite3.connect(db)
        .execute("SELECT seq FROM events WHERE body LIKE ?", (f"%{JANE}%",))
        .fetchall()
    )
    assert db.read_bytes().lower().count(JANE.encode()) > live  # the purged event's are left
    digest = hashlib.sha256(JANE.encode()).hexdigest()
    server = sqlite3.connect(db)  # another process's connection, open throughout
    try:
        argv = ["erase", "--config", str(config_dir), "--store", "shop", "--email", JANE.upper()]
        code, out, _ = run(capsys, *argv, "--json")
        answer = orjson.loads(out)
        assert code == 0
        [shop] = answer["stores"]
        assert shop["events"] == 5  # sent, dead, retry, pending, and Max's event naming her
        assert (shop["pending_dropped"], shop["rows_scrubbed"]) == (1, 1)
        assert shop["deliveries_removed"] == {"dead": 1, "retry": 1}
        assert shop["already_sent"] == {
            "archive": ["jane-sent", "max-mentions-jane"],
            "meta": ["jane-sent"],
        }
        assert (answer["traces"], answer["compacted"]) == ([], True)  # free space held some
        assert holds(config_dir, JANE) == [] and holds(config_dir, digest) == []
        rows = server.execute("SELECT event_id, body FROM events ORDER BY seq").fetchall()
        logged = server.execute("SELECT answer FROM later_log ORDER BY id").fetchall()
    finally:
        server.close()
    bodies = {event_id: orjson.loads(body) for event_id, body in rows}
    assert logged == [("no <erased>",), ("nothing",)]
    assert bodies["max-1"]["emails"] == ["max@example.org"]  # someone else: untouched
    assert bodies["max-mentions-jane"]["properties"] == {"referred_by": "<erased>"}
    assert "emails" not in bodies["jane-sent"] and "anonymous_id" not in bodies["jane-sent"]
    assert bodies["jane-sent"]["order_id"] == "WC-1001"  # the conversion itself stays
    _, out, _ = run(capsys, "status", "--config", str(config_dir), "--json")
    lanes = {lane["destination"]: lane for lane in orjson.loads(out)["lanes"]}
    assert (lanes["archive"]["pending"], lanes["meta"]["retrying"], lanes["meta"]["dead"]) == (
        0,
        0,
        0,
    )
    [audit] = (config_dir / "tagless.db.erasures.jsonl").read_text().splitlines()
    record = orjson.loads(audit)
    assert record["identity_kind"] == "email"
    assert record["stores"][0]["already_sent"] == {"archive": 2, "meta": 1}
    assert "jane" not in audit.lower()


def test_erase_by_user_id_as_text_then_a_second_run_finds_nothing(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--anonymous-id erases every event of that id (its indexed column too) and says so in
    plain lines; running it again finds nothing and still passes the byte search."""
    db = config_dir / "tagless.db"
    populate(db)
    assert holds(config_dir, "anon-jane")
    argv = ["erase", "--config", str(config_dir), "--anonymous-id", "anon-jane"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.startswith("shop: 4 events scrubbed (1 no longer to be sent, 2 retries")
    assert "already sent to meta: 1 event (jane-sent)" in out
    assert out.splitlines()[-1].endswith("no trace left, after compacting it")
    assert holds(config_dir, "anon-jane") == []
    code, out, _ = run(capsys, *argv)
    assert (code, out.splitlines()[0]) == (
        0,
        "shop: 0 events scrubbed (0 no longer to be sent,"
        " 0 retries or dead letters removed, 0 other rows scrubbed)",
    )


def test_erase_refuses_what_is_not_an_email(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value that is no email address is refused before anything is touched."""
    populate(config_dir / "tagless.db")
    code, out, _ = run(capsys, "erase", "--config", str(config_dir), "--email", "jane", "--json")
    assert code == 1
    assert orjson.loads(out)["errors"] == [
        "error: --email: not an email address (expected name@domain.tld)"
    ]
