"""wrk: installing and driving it, and the records of what the runs measured."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import AUTH, FIGURES, LUA, ROOT, BenchError, Settings


@dataclass(frozen=True)
class Wrk:
    """The ``WRK_RESULT`` line of one wrk run (see post.lua)."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    status_errors: int
    socket_errors: dict[str, int]
    events_per_request: int

    @property
    def acked_events(self) -> int:
        return (self.requests - self.status_errors) * self.events_per_request

    @property
    def events_per_s(self) -> float:
        return self.acked_events / self.duration_s

    @property
    def socket_error_total(self) -> int:
        return sum(self.socket_errors.values())

    def errors_text(self) -> str:
        parts = [f"{k} {v}" for k, v in self.socket_errors.items() if v]
        return ", ".join(parts) or "0"


@dataclass(frozen=True)
class Result:
    """One ingest figure for one server."""

    server: str
    figure: str
    wrk: Wrk
    cpu_pct: float
    other_cpu_pct: float
    peak_rss_mb: float
    sink_events: int | None = None
    round: int = 0
    #: the paced request rate of the run (None: as fast as the server answers)
    offered_rps: float | None = None

    @property
    def cpu_ms_per_1k(self) -> float:
        """Server CPU milliseconds per 1,000 acknowledged events."""
        acked = self.wrk.acked_events
        cpu_s = self.cpu_pct / 100 * self.wrk.duration_s
        return cpu_s / acked * 1e6 if acked else float("nan")


@dataclass(frozen=True)
class E2E:
    """End to end: batches posted for a fixed time, then every acknowledged event at each
    destination (``received``: each counter's stats by destination name)."""

    wrk: Wrk
    first_request_at: float
    ingest_end_at: float
    received: dict[str, dict[str, Any]]
    complete: bool
    other_cpu_pct: float
    peak_rss_mb: float
    cpu_s: float = 0.0

    @property
    def acked(self) -> int:
        return self.wrk.acked_events

    def done(self, name: str) -> bool:
        return int(self.received[name]["distinct"]) >= self.acked

    def rate(self, name: str) -> float | None:
        """Distinct events delivered to ``name`` / (its last new event - the first request), if
        every acknowledged event arrived (those committed but not yet acknowledged when wrk
        stopped are delivered too, and counted)."""
        last = self.received[name].get("last_new_at")
        if last is None or not self.done(name) or last <= self.first_request_at:
            return None
        return int(self.received[name]["distinct"]) / (last - self.first_request_at)

    def rates(self) -> dict[str, float | None]:
        return {name: self.rate(name) for name in self.received}

    def missing(self, name: str) -> int:
        return max(0, self.acked - int(self.received[name]["distinct"]))

    @property
    def delivered(self) -> int:
        """The events every destination received (at least the acknowledged ones)."""
        return min((int(s["distinct"]) for s in self.received.values()), default=0)

    @property
    def cpu_ms_per_1k(self) -> float:
        """Tagless's CPU ms per 1,000 events, ingested and delivered to every destination."""
        return self.cpu_s / self.delivered * 1e6 if self.delivered else float("nan")


@dataclass(frozen=True)
class Growth:
    """Batch ingest with ``backlog`` events already waiting in the store (cost growth)."""

    server: str
    #: the point's target (10k or 1M) and the events actually stored when the run began
    backlog: int
    waiting: int
    result: Result
    #: the server's resident memory right after the measured run (VmRSS), in MiB
    rss_mb: float


@dataclass(frozen=True)
class Drain:
    """A backlog delivered to the webhook sink once its outage ends."""

    events: int
    seconds: float | None
    complete: bool
    peak_rss_mb: float
    duplicates: int

    @property
    def events_per_s(self) -> float | None:
        return self.events / self.seconds if self.seconds and self.complete else None


@dataclass
class Report:
    """Everything the printed table needs, filled in as the runs go."""

    facts: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    e2e: E2E | None = None
    half: list[Result] = field(default_factory=list)
    growth: list[Growth] = field(default_factory=list)
    drain: Drain | None = None
    profile: list[str] = field(default_factory=list)
    #: seconds each part of the bench took
    timings: dict[str, float] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def command(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        line = " ".join(shlex.quote(_short(a)) for a in argv)
        self.commands.append(f"{prefix} {line}".strip())

    def runs(self, server: str, figure: str) -> list[Result]:
        """Every round's result of one server and figure, slowest first."""
        found = [r for r in self.results if r.server == server and r.figure == figure]
        return sorted(found, key=lambda r: r.wrk.events_per_s)

    def median(self, server: str, figure: str) -> Result | None:
        """The median round (of an even count, the lower middle one)."""
        runs = self.runs(server, figure)
        return runs[(len(runs) - 1) // 2] if runs else None

    def half_median(self, server: str, figure: str) -> Result | None:
        """The paced run at half of saturation with the median p99 over the rounds (of an even
        count, the lower middle one)."""
        found = [r for r in self.half if r.server == server and r.figure == figure]
        found.sort(key=lambda r: r.wrk.p99_ms)
        return found[(len(found) - 1) // 2] if found else None

    def find(self, server: str, figure: str, round_: int) -> Result | None:
        return next(
            (
                r
                for r in self.results
                if r.server == server and r.figure == figure and r.round == round_
            ),
            None,
        )


def _short(arg: str) -> str:
    """Paths inside the repository, relative to it, so commands read as typed from the root."""
    with contextlib.suppress(ValueError):
        return str(Path(arg).relative_to(ROOT))
    return arg


# --- wrk -------------------------------------------------------------------------------------


def ensure_wrk() -> None:
    """Install wrk from Debian if it is missing; exit non-zero if that is impossible."""
    if shutil.which("wrk"):
        return
    print("wrk is missing: apt-get install -y wrk", flush=True)
    install = ["apt-get", "install", "-y", "wrk"]
    for attempt in ([install], [["apt-get", "update"], install]):
        for argv in attempt:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(argv, check=False, timeout=600, stdout=subprocess.DEVNULL)
        if shutil.which("wrk"):
            return
    sys.exit("bench: wrk is not installed and `apt-get install -y wrk` failed (root needed?)")


def run_wrk(
    report: Report,
    settings: Settings,
    base: str,
    figure: str,
    body: Path,
    seconds: int,
    *,
    rate: float | None = None,
) -> Wrk:
    """One wrk run of ``seconds`` against ``base`` + the figure's path; paced to about ``rate``
    requests/s if set."""
    path, events_per_request, _ = FIGURES[figure]
    env = {
        "BODY_FILE": _short(str(body)),
        "BENCH_PATH": path,
        "RUN_ID": secrets.token_hex(4),
        "MESSAGE_IDS": settings.message_ids,
        "AUTH": AUTH,
    }
    if rate is not None:
        env["RATE_PER_THREAD"] = f"{rate / settings.threads:.3f}"
    argv = [
        "wrk",
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base + path,
    ]
    report.command(argv, env)
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise BenchError(f"wrk gave no WRK_RESULT (rc {done.returncode}):\n{done.stderr[-2000:]}")
    data = json.loads(line.removeprefix("WRK_RESULT "))
    return Wrk(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        rps=data["rps"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        status_errors=data["status_errors"],
        socket_errors={k: data[k] for k in ("connect", "read", "write", "timeout")},
        events_per_request=events_per_request,
    )
