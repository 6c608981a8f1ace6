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
#: The issue's goals for Tagless delivering to the five platforms, as a share of the bare server.
GOALS = {"single": 0.60, "batch": 0.75}
FIGURES = {
    "single": ("/v1/track", 1, "single event, POST /v1/track"),
    "batch": ("/v1/batch", BATCH_SIZE, f"batch of {BATCH_SIZE}, POST /v1/batch"),
}
OTHER_LOAD_LIMIT_PCT = 10.0  # other processes' CPU above which a row is flagged
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

#: The ways Tagless is measured per figure: kind -> (destination set of bench/rig.py, label).
#: *down*: one webhook whose sink answers 503 Retry-After 3600, so the destination pauses and
#: ingest runs alone, as the bare server does; *five*: delivering to the five fake platforms
#: while ingest runs; *file*: a ``file`` destination on the outbox's disk (a second fsync stream).
TAGLESS_KINDS: Final = {
    "tagless-down": ("down", "Tagless, destination down"),
    "tagless-five": ("five", "Tagless, delivering to 5 platforms"),
    "tagless-file": ("file", "Tagless, file destination"),
}
#: The kind whose figures the goals and the latency runs are about.
MAIN_KIND: Final = "tagless-five"


class BenchError(Exception):
    """A run could not be carried out; the message says why."""


@dataclass(frozen=True)
class Settings:
    """Load and timing knobs of one bench invocation."""

    #: 5 s runs keep `make bench` (every part, 3 rounds, a 1M backlog) under 10 minutes
    duration: int = 5
    warmup: int = 2
    rounds: int = 3
    connections: int = 64
    threads: int = 2
    e2e_timeout: float = 300.0
    settle: float = 2.0
    tagless: Path = TAGLESS
    wait_idle: float = 0.0
    stitching: bool = True
    #: events in the outbox for the second cost-growth point and the drain (the first: 10k)
    backlog: int = 1_000_000
    small_backlog: int = 10_000
    #: the messageIds sent: "random" (64 random bits first, as a UUID lands anywhere in the
    #: de-duplication index) or "sequential" (the figures before 2026-12-01 22:10 UTC)
    message_ids: str = "random"
    #: sample Tagless with py-spy during the end-to-end run (bench/profiling.py)
    profile: bool = False
    #: Tagless's server.ingest_processes and server.delivery_nice: as a 2-core machine should
    #: run it (README: "Ingest in several processes"); `--ingest-processes 0` measures one process
    ingest_processes: int = 2
    delivery_nice: int = 10
    #: Tagless's server.delivery_idle: the delivery processes run SCHED_IDLE
    delivery_idle: bool = True
    #: Tagless's server.delivery_processes: the lanes dealt over that many processes (0: the
    #: main process delivers)
    delivery_processes: int = 2

    def describe(self) -> str:
        """The options that set the load, as given to bench/run.py."""
        return (
            f"--duration {self.duration} --warmup {self.warmup} --rounds {self.rounds} "
            f"--backlog {self.backlog} --ingest-processes {self.ingest_processes} "
            f"--delivery-nice {self.delivery_nice} --delivery-processes {self.delivery_processes}"
            f" --delivery-idle {'on' if self.delivery_idle else 'off'}"
            f" --message-ids {self.message_ids}"
        )

    @property
    def short(self) -> bool:
        """Whether any load option is below `make bench`'s defaults."""
        default = Settings()
        mine = (self.duration, self.warmup, self.rounds, self.backlog)
        theirs = (default.duration, default.warmup, default.rounds, default.backlog)
        return any(m < t for m, t in zip(mine, theirs, strict=True))
