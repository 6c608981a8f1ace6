"""Notices the wall clock being set back, so that due times kept in wall time can follow it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Final

#: A wall clock seen this much earlier than before was set back (NTP slews far less).
CLOCK_BACK_TOLERANCE_SECS: Final = 5.0


class WallClockWatch:
    """Remembers the latest wall time seen; says by how much a new one is earlier."""

    def __init__(self, tolerance_secs: float = CLOCK_BACK_TOLERANCE_SECS) -> None:
        self.tolerance_secs = tolerance_secs
        self._latest = float("-inf")

    def went_back(self, now: float) -> float:
        """Seconds the clock went back since the latest time seen (0.0 within the tolerance);
        ``now`` becomes the latest time either way."""
        back = self._latest - now
        self._latest = now if back > self.tolerance_secs else max(self._latest, now)
        return back if back > self.tolerance_secs else 0.0

    async def follow(self, now: float, back: float, move: Awaitable[object]) -> None:
        """Await ``move``, which moves due times back by the jump :meth:`went_back` just
        reported at ``now``; if it fails, the next time seen reports the jump again."""
        try:
            await move
        except BaseException:
            self._latest = max(self._latest, now + back)
            raise
