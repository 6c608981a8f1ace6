"""Copies the outbox's WAL into its database file from a thread of its own, off the commits.

SQLite checkpoints a WAL database itself: the commit that takes the WAL past
``wal_autocheckpoint`` pages (1,000 by default, 4 MiB) copies every page into the database file
and syncs it before its statement returns, inside that commit's acknowledgement and inside the
writers' lock that every other process's commit waits for (router/outbox/writer.py). Under batch
ingest that is several checkpoints a second, each a stall of tens of milliseconds for whichever
requests were in those commits (measured, batches paced at 200 requests/s while delivering to
five platforms: commits' p99 under the lock 12-18 ms with them, 6.5-9 ms with this thread).

Here a thread with its own connection runs a PASSIVE checkpoint every ``every_secs``: it copies
what readers allow while commits go on, waits for no lock, and the first commit after a
complete one starts the WAL over from its beginning, so the file stays small. The writers keep
an automatic checkpoint of their own at :data:`WRITER_AUTOCHECKPOINT_PAGES`, far above what the
thread lets accumulate: a backstop for a process without this thread (a CLI command) or a
thread that cannot keep up. The maintenance round's TRUNCATE (``wal_checkpoint_secs``) still
gives the file's space back.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger("tagless.outbox")

#: How often the thread checkpoints: at 40,000 events/s of ~700 bytes, ~5 MiB of WAL apart.
CHECKPOINT_EVERY_SECS: Final = 0.2
#: Pages of WAL past which a commit checkpoints by itself (64 MiB of 4 KiB pages).
WRITER_AUTOCHECKPOINT_PAGES: Final = 16_384
#: At most one checkpoint_failed line this often (the thread tries again every round).
FAILURE_LOG_SECS: Final = 60.0


class Checkpointer:
    """A PASSIVE checkpoint of the database at ``path`` every ``every_secs``, in a thread."""

    def __init__(
        self, path: Path, *, synchronous: str, every_secs: float = CHECKPOINT_EVERY_SECS
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.every_secs = every_secs
        #: Checkpoints run.
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (its connection opens there); a second start does nothing."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="outbox-checkpointer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current round (it is short: it waits for nothing)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        failed_at: float | None = None
        try:
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            while not self._stop.wait(self.every_secs):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as error:
                    now = time.monotonic()
                    if failed_at is None or now - failed_at >= FAILURE_LOG_SECS:
                        failed_at = now
                        log.warning("checkpoint_failed", error=str(error))
                    continue
                self.rounds += 1
        except sqlite3.Error as error:  # the connection itself: the writers' backstop remains
            log.warning("checkpointer_stopped", error=str(error))
        finally:
            db.close()
