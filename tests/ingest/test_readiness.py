"""/readyz: one answer on the ingest and the admin listener, false while ingest cannot commit."""

from __future__ import annotations

import sqlite3
from typing import Any


async def readyz(running: Any) -> list[tuple[int, Any]]:
    """The /readyz answer of the ingest and the admin listener."""
    answers = []
    for port in (running.app.ports["ingest"], running.app.ports["admin"]):
        async with running.session.get(f"http://127.0.0.1:{port}/readyz") as answer:
            answers.append((answer.status, await answer.json()))
    return answers


async def test_both_listeners_answer_ready_in_one_shape(tagless: Any) -> None:
    """A running server is ready, and says so the same way on both listeners."""
    assert await readyz(tagless) == [(200, {"ready": True, "reason": None})] * 2


async def test_not_ready_while_shutting_down(tagless: Any) -> None:
    """Once ingest refuses new events for shutdown, both listeners say so."""
    tagless.app.ingest.accepting = False
    assert await readyz(tagless) == [(503, {"ready": False, "reason": "shutting_down"})] * 2


async def test_not_ready_once_the_outbox_is_closed(tagless: Any) -> None:
    """With the outbox closed no event can be committed: both listeners say outbox_closed."""
    await tagless.app.outbox.close()
    assert await readyz(tagless) == [(503, {"ready": False, "reason": "outbox_closed"})] * 2


async def test_not_ready_while_commits_fail(tagless: Any) -> None:
    """While the database refuses commits (here: another process holds its write lock), both
    listeners say commit_failed."""
    box = tagless.app.outbox
    await box.writer.outside_transaction(lambda db: db.execute("PRAGMA busy_timeout=20"))
    other = sqlite3.connect(box.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        status, _ = await tagless.post("/v1/track", {"messageId": "m", "userId": "u", "event": "X"})
        assert status == 503
        assert await readyz(tagless) == [(503, {"ready": False, "reason": "commit_failed"})] * 2
    finally:
        other.execute("ROLLBACK")
        other.close()
