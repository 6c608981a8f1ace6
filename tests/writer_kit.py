"""The outbox writer's tests' pieces: an event, what a file stores, another process's turn."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from router.outbox.base import NewEvent
from router.outbox.writer import GroupWriter


def event(event_id: str) -> NewEvent:
    return NewEvent("shop", event_id, 1.0, ("hook",), b'{"event_id":"' + event_id.encode() + b'"}')


def stored(path: Path) -> list[str]:
    """The event_ids the file at ``path`` holds, in commit order."""
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]


@contextlib.contextmanager
def another_process_s_turn(writer: GroupWriter) -> Iterator[None]:
    """The writers' lock held through another open file of it, as another process holds it."""
    assert writer.lock_path is not None and writer.lock_path.exists()
    holder = os.open(writer.lock_path, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
