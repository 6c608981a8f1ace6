"""A `tagless serve` on another clock, through libfaketime (Debian's ``faketime``, installed by
``make chaos-deps``): accelerated (every clock and every timed wait of the process runs N times
faster, so an hour of outage and back-off passes in minutes), or with its wall clock jumped
while the monotonic clock goes on (an NTP step, a VM resumed)."""

from __future__ import annotations

from pathlib import Path

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def require() -> None:
    """Fail with what to run when libfaketime is missing."""
    if not LIBFAKETIME.exists():
        raise AssertionError(f"{LIBFAKETIME} is missing: run `make chaos-deps` (apt faketime)")


def accelerated(rate: int) -> dict[str, str]:
    """The environment of a process whose clocks, sleeps and poll timeouts run ``rate`` x."""
    require()
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": f"+0 x{rate}"}


class WallClock:
    """The wall clock of a process, offset by what :meth:`jump` wrote (re-read every second);
    its monotonic clock is left alone, as a real clock step leaves it."""

    def __init__(self, directory: Path) -> None:
        require()
        self.file = directory / "faketime-offset"
        self.offset = 0
        self.jump(0)

    @property
    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_CACHE_DURATION": "1",
        }

    def jump(self, seconds: int) -> None:
        """Set the wall clock ``seconds`` away from the real one (the process sees it within
        a second)."""
        self.offset = seconds
        staged = self.file.with_suffix(".new")
        staged.write_text(f"{seconds:+d}\n")
        staged.replace(self.file)  # at once: a half-written file would read as no offset
