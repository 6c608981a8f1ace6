"""Shared paths, constants and settings of the bench."""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
LUA = BENCH / "post.lua"
PYTHON = sys.executable
TAGLESS = Path(sys.executable).parent / "tagless"

WRITE_KEY = "bench-key"
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - a throwaway token for a local bench server
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
BATCH_SIZE = 100
GOALS = {"single": 0.50, "batch": 0.60}
FIGURES = {
    "single": ("/v1/track", 1, "single event, POST /v1/track"),
    "batch": ("/v1/batch", BATCH_SIZE, f"batch of {BATCH_SIZE}, POST /v1/batch"),
}
OTHER_LOAD_LIMIT_PCT = 10.0  # other processes' CPU above which a row is flagged
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

#: Tagless is measured twice per figure: with its destination down (the sink answers 503
#: Retry-After 3600, so the destination pauses and ingest runs alone, as the bare server
#: does) and with the destination delivering to the sink while ingest runs.
TAGLESS_KINDS: Final = {
    "tagless-down": ("/down", "Tagless, destination down"),
    "tagless-live": ("/hook", "Tagless, delivering"),
}


class BenchError(Exception):
    """A run could not be carried out; the message says why."""


@dataclass(frozen=True)
class Settings:
    """Load and timing knobs of one bench invocation."""

    duration: int = 10
    warmup: int = 3
    rounds: int = 3
    connections: int = 64
    threads: int = 2
    e2e_timeout: float = 300.0
    settle: float = 2.0
    tagless: Path = TAGLESS
    wait_idle: float = 0.0
    stitching: bool = True
