"""Claimed ranges of the event log, so a destination cursor only moves past settled work."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from router.outbox.base import Claim

if TYPE_CHECKING:
    from router.outbox.room import Backlog
    from router.outbox.writer import Added

#: A claim of one kind (new events, or due retries) for a lane.
ClaimOne = Callable[[], Awaitable[Claim | None]]


@attrs.define
class _Range:
    token: int
    hi: int
    items: int  # events of the range routed to the lane
    done: bool = False


@attrs.define
class Lane:
    """One (store, destination): how far events were handed out and how far all are settled.

    Claims of a lane cover consecutive ranges of the event log. The durable cursor may only move
    to the end of the longest prefix of settled ranges, so a crash re-sends whatever was in
    flight (at least once), never skips it. A released claim stays unsettled: its lane hands out
    nothing more until the process restarts from the durable cursor.
    """

    cursor: int
    read_pos: int
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    closed: bool = False
    last_claim_was_retry: bool = False
    _ranges: deque[_Range] = attrs.field(factory=deque)

    def hand_out(self, token: int, hi: int, items: int) -> None:
        """Record that the range after ``read_pos`` up to ``hi``, holding ``items`` events
        routed to the lane, is now claimed as ``token``."""
        self._ranges.append(_Range(token, hi, items))
        self.read_pos = hi

    def settle(self, token: int) -> tuple[int | None, int]:
        """Mark ``token`` settled; return the new cursor if it moved, and how many routed
        events it moved past."""
        for entry in self._ranges:
            if entry.token == token:
                entry.done = True
                break
        moved, passed = None, 0
        while self._ranges and self._ranges[0].done:
            entry = self._ranges.popleft()
            moved, passed = entry.hi, passed + entry.items
        if moved is not None:
            self.cursor = moved
        return moved, passed

    def release(self) -> None:
        """Stop handing out work: something in flight was given back unsettled."""
        self.closed = True


async def claim_in_turn(lane: Lane, new: ClaimOne, retries: ClaimOne) -> Claim | None:
    """Claim new events or due retries for ``lane``, alternating which comes first, so failing
    retries never starve new events (during an outage they would, rest after rest) and a
    backlog never starves retries."""
    async with lane.lock:
        if lane.closed:
            return None
        first, then = (new, retries) if lane.last_claim_was_retry else (retries, new)
        claim = await first() or await then()
        lane.last_claim_was_retry = claim is not None and claim.is_retry
        return claim


class Wakeups:
    """The dispatchers' wake-up signals, per store (an outbox's first base; it sets
    ``_signals`` to an empty dict)."""

    _signals: dict[str, list[asyncio.Event]]
    backlog: Backlog
    #: Told of every commit of this process after the lanes are woken (an ingest process
    #: passes it on to the delivering process: router/ingest_pool.py).
    commit_observer: Callable[[Added], None] | None = None
    #: Told of every wake-up of a store's lanes (commits, replays): the main process passes
    #: it on to its delivery processes (router/delivery_pool.py).
    wake_observer: Callable[[str], None] | None = None

    def committed(self, added: Added) -> None:
        """Events were committed, by this process or by one of its ingest processes: count
        them as undelivered and wake the lanes of their stores."""
        self.backlog.committed(added)
        for store in {store for store, _ in added}:
            self._notify(store)
        if self.commit_observer is not None:
            self.commit_observer(added)

    def subscribe(self, store: str) -> asyncio.Event:
        """A new event, set whenever events of ``store`` are committed or replayed."""
        event = asyncio.Event()
        self._signals.setdefault(store, []).append(event)
        return event

    def wake(self, store: str) -> None:
        """Wake the lanes of ``store`` in this process (told by the main process)."""
        for event in self._signals.get(store, ()):
            event.set()

    def _notify(self, store: str) -> None:
        self.wake(store)
        if self.wake_observer is not None:
            self.wake_observer(store)
