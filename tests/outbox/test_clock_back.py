"""Retries wait the time they were given, also when the wall clock is set back meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router import codec
from router.clock import FakeClock
from router.destination import Outcome
from router.outbox.base import NewEvent, OutboxUnavailable
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event
from tests.retry_kit import NO_JITTER, retry_on_each


async def test_a_retry_is_due_after_its_backoff_when_the_clock_went_back_an_hour(
    outbox: Any, clock: FakeClock
) -> None:
    """A retry due in 1 s is claimed 1 s later even though the wall clock was set back an hour
    meanwhile (before, it waited the hour out too); a small step back changes nothing."""
    await retry_on_each(outbox, clock.now(), (outbox, "hook"))
    clock.advance(-3600.0)
    assert await outbox.claim("shop", "hook", 10) is None  # not due yet: 1 s of backoff
    clock.advance(1.0)
    retry = await outbox.claim("shop", "hook", 10)
    assert retry is not None and [i.event_id for i in retry.items] == ["a"]
    assert await outbox.next_due("shop", "hook") == clock.now() + outbox.lease_secs
    clock.advance(-2.0)  # within the tolerance: the lease keeps its time
    assert await outbox.claim("shop", "hook", 10) is None
    assert await outbox.next_due("shop", "hook") == clock.now() + 2.0 + outbox.lease_secs


async def test_a_retry_settled_while_the_clock_was_ahead_follows_it_back(
    outbox: Any, clock: FakeClock
) -> None:
    """The clock goes an hour ahead between a claim and its settlement, then two hours back:
    the retry counted from the time ahead is due 1 s after the settlement's moment, not an hour
    later (the settlement's time is one the outbox has seen)."""
    body = codec.encode(make_event(event_id="a"))
    await outbox.append([NewEvent("shop", "a", clock.now(), ("hook",), body)])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    clock.advance(3600.0)
    await outbox.settle(claim, [(claim.items[0], Outcome("retry", "http_503", 503))], NO_JITTER)
    clock.advance(-7200.0)
    assert await outbox.claim("shop", "hook", 10) is None
    clock.advance(1.0)
    retry = await outbox.claim("shop", "hook", 10)
    assert retry is not None and [i.event_id for i in retry.items] == ["a"]


async def test_processes_sharing_the_file_each_move_only_the_retries_they_deliver(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Two delivery processes on one outbox file (each its own lanes) both see the clock go
    back an hour: each moves its own destination's retry once, so both are due 1 s after
    their settlement's moment (moving every retry, each would move twice: due an hour early)."""
    path = tmp_path / "outbox.db"
    first = SqliteOutbox(path, clock=clock, lease_secs=30.0)
    second = SqliteOutbox(path, clock=clock, lease_secs=30.0)
    await first.open()
    await second.open()
    try:
        await retry_on_each(first, clock.now(), (first, "hook"), (second, "other"))
        clock.advance(-3600.0)
        for box, destination in ((first, "hook"), (second, "other")):
            assert await box.claim("shop", destination, 10) is None  # sees the clock went back
        for destination in ("hook", "other"):
            assert await first.next_due("shop", destination) == clock.now() + 1.0
    finally:
        await first.close()
        await second.close()


async def test_a_jump_whose_move_failed_is_moved_at_the_next_look(
    outbox: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox refuses the write that moves the retries (it is down for a moment) when the
    clock is seen an hour back: the claim fails, and the next one moves them, so the retry is
    still due 1 s after its settlement (before, the jump counted as seen and the retry waited
    the hour out)."""
    await retry_on_each(outbox, clock.now(), (outbox, "hook"))
    clock.advance(-3600.0)
    write = outbox.writer.write

    async def refused(*_: Any) -> None:
        raise OutboxUnavailable("down for a moment")

    monkeypatch.setattr(outbox.writer, "write", refused)
    with pytest.raises(OutboxUnavailable):
        await outbox.claim("shop", "hook", 10)
    monkeypatch.setattr(outbox.writer, "write", write)
    assert await outbox.claim("shop", "hook", 10) is None  # not due yet: 1 s of backoff
    clock.advance(1.0)
    retry = await outbox.claim("shop", "hook", 10)
    assert retry is not None and [i.event_id for i in retry.items] == ["a"]
