"""``tagless migrate``: one numbered schema list for both backends; a dry run changes nothing,
a run brings the outbox to the current version, a newer schema is refused."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from router.cli import main
from router.outbox.migrations import POSTGRES_BASELINE, SCHEMA_VERSION, STEPS
from router.outbox.sqlite import SqliteOutbox


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as stop:  # a message instead of a code: printed, exit 1 (as Python does)
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = 1 if isinstance(stop.code, str) else int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def config_dir(root: Path, outbox: str) -> Path:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text(f"outbox: {outbox}\nadmin: {{token: t-0123456789}}\n")
    (root / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [k]\ndestinations:\n"
        "  - {id: hook, type: webhook, url: 'http://127.0.0.1:9/h'}\n"
    )
    return root


def pg_version(url: str) -> int | None:
    async def read() -> int | None:
        db = await asyncpg.connect(url)
        try:
            if await db.fetchval("SELECT to_regclass('tagless_schema')") is None:
                return None
            return int(await db.fetchval("SELECT version FROM tagless_schema"))
        finally:
            await db.close()

    return asyncio.run(read())


def test_the_versions_are_one_numbered_list_for_both_backends() -> None:
    """Versions count up from 1 without a gap; PostgreSQL's baseline is one of them and every
    later version carries its PostgreSQL statements."""
    assert [step.version for step in STEPS] == list(range(1, SCHEMA_VERSION + 1))
    assert all(s.postgres is not None for s in STEPS if s.version > POSTGRES_BASELINE)


def test_an_older_sqlite_file_is_reported_then_migrated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schema-3 file: the dry run lists step 4 and leaves the file at 3; the run takes it
    to the current version; a second run has nothing to do."""
    path = tmp_path / "outbox.db"

    async def make() -> None:
        box = SqliteOutbox(path)
        await box.open()
        await box.close()

    asyncio.run(make())
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE attempts")
        db.execute("PRAGMA user_version = 3")
    config = str(config_dir(tmp_path / "config", f"{{path: {path}}}"))
    code, out, _ = run(capsys, "migrate", "--config", config, "--dry-run", "--json")
    answer = orjson.loads(out)
    assert code == 0 and (answer["version"], answer["target"]) == (3, SCHEMA_VERSION)
    assert [step["version"] for step in answer["steps"]] == [4, 5]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    code, out, _ = run(capsys, "migrate", "--config", config)
    assert code == 0 and f"migrated to {SCHEMA_VERSION}" in out
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute("SELECT count(*) FROM attempts")
    code, out, _ = run(capsys, "migrate", "--config", config)
    assert code == 0 and out.endswith("up to date\n")


def test_a_new_postgresql_database_is_created_at_the_current_version(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty database: the dry run creates nothing; the run creates the schema at the
    version SQLite files carry."""
    config = str(config_dir(tmp_path / "config", f"{{url: '{pg_url}'}}"))
    code, out, _ = run(capsys, "migrate", "--config", config, "--dry-run")
    assert code == 0 and f"would create it at version {SCHEMA_VERSION}" in out
    assert pg_version(pg_url) is None
    code, out, _ = run(capsys, "migrate", "--config", config)
    assert code == 0 and pg_version(pg_url) == SCHEMA_VERSION


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_schema_written_by_a_newer_tagless_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, backend: str
) -> None:
    """Exit 1 with a message naming both versions; the outbox is left as it was."""
    newer = SCHEMA_VERSION + 1
    if backend == "sqlite":
        path = tmp_path / "outbox.db"
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA user_version = {newer}")
        outbox = f"{{path: {path}}}"
    else:
        url = request.getfixturevalue("pg_url")
        run(capsys, "migrate", "--config", str(config_dir(tmp_path / "first", f"{{url: '{url}'}}")))

        async def bump() -> None:
            db = await asyncpg.connect(url)
            await db.execute("UPDATE tagless_schema SET version = $1", newer)
            await db.close()

        asyncio.run(bump())
        outbox = f"{{url: '{url}'}}"
    code, _, err = run(capsys, "migrate", "--config", str(config_dir(tmp_path / "c", outbox)))
    assert code == 1
    assert f"schema version {newer} was written by a newer Tagless" in err
    assert f"knows up to {SCHEMA_VERSION}" in err


def test_backup_of_a_postgresql_outbox_points_to_pg_dump(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """tagless backup copies SQLite files: on a PostgreSQL config it says so and what to use."""
    config = str(config_dir(tmp_path / "config", f"{{url: '{pg_url}'}}"))
    code, _, err = run(capsys, "backup", "--config", config, "--to", str(tmp_path / "b.db"))
    assert code == 1 and "back it up with pg_dump" in err
    assert not (tmp_path / "b.db").exists()
