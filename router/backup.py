"""An online copy of the SQLite outbox, consistent and safe while Tagless runs."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path


class BackupError(Exception):
    """The outbox could not be copied; the message says what and where."""


def backup_outbox(source: Path, target: Path) -> int:
    """Copy the outbox database at ``source`` to ``target`` and return the copy's size.

    SQLite's online backup API copies one consistent snapshot: in WAL mode it reads like any
    other reader, so Tagless keeps committing while it runs. The copy is written next to
    ``target`` under a temporary name, checked with ``PRAGMA integrity_check``, switched to
    the rollback journal (one self-contained file, no ``-wal`` beside it), fsynced and only
    then renamed onto ``target``: a failed backup never leaves a half-written file there.
    """
    if not source.is_file():
        raise BackupError(f"no outbox at {source}: has Tagless run with this config?")
    if target.resolve() == source.resolve():
        raise BackupError(f"--to {target} is the outbox itself; give another file")
    folder = target.parent
    if not folder.is_dir():
        raise BackupError(f"--to {target}: folder {folder} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        _copy(source, Path(temporary))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return target.stat().st_size


def _copy(source: Path, temporary: Path) -> None:
    try:
        # Not mode=ro: a read-only connection to a stopped outbox leaves -wal and -shm files
        # behind, owned by whoever ran the backup. query_only keeps this one from writing data;
        # as the last connection it folds the WAL back and removes them, as Tagless does.
        with closing(sqlite3.connect(source)) as src:
            src.execute("PRAGMA query_only=1")
            src.execute("PRAGMA busy_timeout=5000")
            with closing(sqlite3.connect(temporary)) as copy:
                src.backup(copy)
                problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
                if problems != ["ok"]:
                    raise BackupError(f"the copy of {source} fails integrity_check: {problems}")
                copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as error:
        raise BackupError(f"cannot back up {source}: {error}") from error
    with temporary.open("rb") as written:
        os.fsync(written.fileno())


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
