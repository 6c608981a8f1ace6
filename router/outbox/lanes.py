"""Claimed ranges of the event log, so a destination cursor only moves past settled work."""

from __future__ import annotations

import asyncio
from collections import deque

import attrs


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
