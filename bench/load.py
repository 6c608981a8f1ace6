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


@dataclass(frozen=True)
class E2E:
    """End to end: batches posted for a fixed time, then every acknowledged event at the sink."""

    wrk: Wrk
    first_request_at: float
    ingest_end_at: float
    sink: dict[str, Any]
    complete: bool
    other_cpu_pct: float
    peak_rss_mb: float

    @property
    def acked(self) -> int:
        return self.wrk.acked_events

    @property
    def last_delivery_at(self) -> float | None:
        return self.sink.get("last_new_at")

    @property
    def elapsed_s(self) -> float | None:
        last = self.last_delivery_at
        return None if last is None else last - self.first_request_at

    @property
    def events_per_s(self) -> float | None:
        elapsed = self.elapsed_s
        return None if not elapsed or not self.complete else self.acked / elapsed

    @property
    def missing(self) -> int:
        return max(0, self.acked - int(self.sink["distinct"]))


@dataclass
class Report:
    """Everything the printed table needs, filled in as the runs go."""

    facts: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    e2e: E2E | None = None
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
) -> Wrk:
    """One wrk run of ``seconds`` against ``base`` + the figure's path."""
    path, events_per_request, _ = FIGURES[figure]
    env = {
        "BODY_FILE": _short(str(body)),
        "BENCH_PATH": path,
        "RUN_ID": secrets.token_hex(4),
        "AUTH": AUTH,
    }
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
