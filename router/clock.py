"""Time as an injectable dependency: the outbox and dispatcher never read the clock directly."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from typing import Any, Protocol


class Clock(Protocol):
    """Wall time in Unix seconds, and a wait that a wake-up event can cut short."""

    def now(self) -> float: ...

    async def wait(self, wake: asyncio.Event, seconds: float | None) -> None:
        """Return when ``wake`` is set or ``seconds`` of this clock have passed."""


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def wait(self, wake: asyncio.Event, seconds: float | None) -> None:
        if seconds is not None and seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`; waits end as it passes them."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def now(self) -> float:
        return self._now

    async def wait(self, wake: asyncio.Event, seconds: float | None) -> None:
        if wake.is_set() or (seconds is not None and seconds <= 0):
            return
        waker = asyncio.ensure_future(wake.wait())
        waiters: set[asyncio.Future[Any]] = {waker}
        if seconds is not None:
            alarm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._sleepers, (self._now + seconds, next(self._ids), alarm))
            waiters.add(alarm)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward and release every wait whose deadline has passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, alarm = heapq.heappop(self._sleepers)
            if not alarm.done():
                alarm.set_result(None)
