"""The time windows the admin pages report over."""

from __future__ import annotations

from typing import Final

#: Window names and their length in seconds.
WINDOWS: Final = {"1h": 3_600.0, "24h": 86_400.0, "7d": 604_800.0}


def window_secs(window: str) -> float:
    """The length of a named window; a ValueError naming the valid ones otherwise."""
    try:
        return WINDOWS[window]
    except KeyError:
        valid = ", ".join(WINDOWS)
        raise ValueError(f"window {window!r} is not one of {valid}") from None
