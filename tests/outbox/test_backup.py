"""``tagless backup`` copies a live outbox: consistent, complete, and never a half-written file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from router import codec
from router.backup import BackupError, backup_outbox
from router.cli import main
from router.outbox.base import NewEvent
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event

#: ``tagless backup`` copies the SQLite file (PostgreSQL has its own dumps).
pytestmark = pytest.mark.sqlite_only


def events(prefix: str, count: int) -> list[NewEvent]:
    body = codec.encode(make_event(event_id=f"{prefix}0"))
    return [NewEvent("shop", f"{prefix}{i}", 1.0, ("hook",), body) for i in range(count)]


def config_dir(root: Path, outbox: Path) -> Path:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text(f'outbox: {{path: "{outbox}"}}\nadmin: {{token: t}}\n')
    (root / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [k]\ndestinations: [{id: hook, type: file, path: x.jsonl}]\n"
    )
    return root


def run_cli(*argv: str) -> int | str | None:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return done.value.code


async def test_backup_of_a_running_outbox_holds_every_committed_event(
    outbox: SqliteOutbox, tmp_path: Path
) -> None:
    """Backed up while appends keep committing, the copy passes integrity_check and holds
    every event committed before the backup began, in order, readable by a new outbox."""
    await outbox.append(events("before", 300))
    conf = config_dir(tmp_path / "conf", outbox.path)
    target = tmp_path / "backups" / "tagless.db"
    target.parent.mkdir()
    loop = asyncio.get_running_loop()
    writes = asyncio.gather(*(outbox.append(events(f"during{n}-", 50)) for n in range(20)))
    code = await loop.run_in_executor(
        None, run_cli, "backup", "--config", str(conf), "--to", str(target)
    )
    await writes
    assert code == 0
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = [row[0] for row in copy.execute("SELECT event_id FROM events ORDER BY seq")]
    assert ids[:300] == [f"before{i}" for i in range(300)]
    restored = SqliteOutbox(target)
    await restored.open()
    claimed: list[str] = []
    try:
        while claim := await restored.claim("shop", "hook", 1000):
            claimed += [item.event_id for item in claim.items]
    finally:
        await restored.close()
    assert claimed == ids


async def test_backup_is_one_self_contained_file(outbox: SqliteOutbox, tmp_path: Path) -> None:
    """The copy uses the rollback journal, so no -wal file beside it is needed to read it;
    nothing but the copy is left in the target folder."""
    await outbox.append(events("e", 10))
    target = tmp_path / "out" / "copy.db"
    target.parent.mkdir()
    size = backup_outbox(outbox.path, target)
    assert size == target.stat().st_size > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.db"]
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("SELECT count(*) FROM events").fetchone() == (10,)


async def test_backup_of_a_stopped_outbox_leaves_no_wal_files_behind(tmp_path: Path) -> None:
    """Backing up an outbox no process has open leaves its folder as it was: no -wal or
    -shm file (which, created by another user, would lock Tagless out of its own database)."""
    box = SqliteOutbox(tmp_path / "data" / "outbox.db")
    await box.open()
    await box.append(events("e", 5))
    await box.close()
    before = sorted(p.name for p in box.path.parent.iterdir())
    backup_outbox(box.path, tmp_path / "copy.db")
    assert sorted(p.name for p in box.path.parent.iterdir()) == before


def test_backup_without_an_outbox_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config whose outbox does not exist yet is an error naming the path, not a new file."""
    missing = tmp_path / "var" / "tagless.db"
    conf = config_dir(tmp_path / "conf", missing)
    code = run_cli("backup", "--config", str(conf), "--to", str(tmp_path / "copy.db"))
    assert code == f"no outbox at {missing}: has Tagless run with this config?"
    assert not missing.exists() and not (tmp_path / "copy.db").exists()


async def test_backup_onto_the_outbox_itself_is_refused(outbox: SqliteOutbox) -> None:
    """``--to`` naming the live database is refused before anything is written."""
    with pytest.raises(BackupError, match="is the outbox itself"):
        backup_outbox(outbox.path, outbox.path)


def test_backup_into_a_missing_folder_names_it(tmp_path: Path) -> None:
    """A target folder that does not exist is named in the error."""
    source = tmp_path / "outbox.db"
    sqlite3.connect(source).close()
    with pytest.raises(BackupError, match=f"folder {tmp_path / 'nowhere'} does not exist"):
        backup_outbox(source, tmp_path / "nowhere" / "copy.db")


def test_a_failed_backup_leaves_no_file(tmp_path: Path) -> None:
    """A source that is not a database fails with its path, and leaves neither the target
    nor a temporary file behind."""
    source = tmp_path / "outbox.db"
    source.write_bytes(b"not a database, just bytes" * 100)
    (tmp_path / "out").mkdir()
    with pytest.raises(BackupError, match=f"cannot back up {source}"):
        backup_outbox(source, tmp_path / "out" / "copy.db")
    assert list((tmp_path / "out").iterdir()) == []
