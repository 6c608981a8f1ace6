"""`make bench`: durable ingest of Tagless against a bare group-commit baseline, then end to end."""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import urlsplit

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
LUA = BENCH / "post.lua"
PYTHON = sys.executable
TAGLESS = Path(sys.executable).parent / "tagless"

sys.path.insert(0, str(BENCH))
import payloads  # noqa: E402

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


class BenchError(Exception):
    """A run could not be carried out; the message says why."""


@dataclass(frozen=True)
class Settings:
    """Load and timing knobs of one bench invocation."""

    duration: int = 10
    warmup: int = 3
    connections: int = 64
    threads: int = 2
    e2e_timeout: float = 300.0
    settle: float = 2.0
    tagless: Path = TAGLESS
    wait_idle: float = 0.0


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
    sink_events: int | None = None


@dataclass(frozen=True)
class E2E:
    """End to end: batches posted for a fixed time, then every acknowledged event at the sink."""

    wrk: Wrk
    first_request_at: float
    ingest_end_at: float
    sink: dict[str, Any]
    complete: bool
    other_cpu_pct: float

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

    def find(self, server: str, figure: str) -> Result | None:
        return next((r for r in self.results if r.server == server and r.figure == figure), None)


def _short(arg: str) -> str:
    """Paths inside the repository, relative to it, so commands read as typed from the root."""
    with contextlib.suppress(ValueError):
        return str(Path(arg).relative_to(ROOT))
    return arg


# --- processes --------------------------------------------------------------------------------


class Service:
    """A server process in its own process group; stopped (TERM, then KILL) on exit."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = LOGS / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        LOGS.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env={**os.environ, **(self.env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        self._signal(signal.SIGKILL)  # anything the leader left behind in its group

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU of every process in the group (all threads)."""
        return sum(cpu for _, pgrp, cpu in processes() if pgrp == self.pid)

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(url, timeout=1.0)[0] == 200:
                    return
            time.sleep(0.1)
        raise BenchError(f"{self.name} not ready at {url} after {READY_TIMEOUT_S:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(method: str, url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One plain-HTTP request to a local server; (status, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    return http_request("GET", url, timeout)


def http_post(url: str, timeout: float = 5.0) -> int:
    return http_request("POST", url, timeout)[0]


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


# --- servers ---------------------------------------------------------------------------------


def bare_service(workdir: Path, port: int) -> tuple[Service, str]:
    argv = [PYTHON, str(BENCH / "bare_server.py"), "--db", str(workdir / "bare.db")]
    argv += ["--port", str(port), "--sync", "FULL", "--max-rows", "1000"]
    return Service("bare", argv), f"http://127.0.0.1:{port}/healthz"


#: Tagless is measured twice per figure: with its destination down (the sink answers 503
#: Retry-After 3600, so the destination pauses and ingest runs alone, as the bare server
#: does) and with the destination delivering to the sink while ingest runs.
TAGLESS_KINDS: Final = {
    "tagless-down": ("/down", "Tagless, destination down"),
    "tagless-live": ("/hook", "Tagless, delivering"),
}


def write_tagless_config(
    workdir: Path, port: int, admin_port: int, sink_port: int, hook_path: str = "/hook"
) -> Path:
    config = workdir / "config"
    (config / "stores").mkdir(parents=True)
    (config / "tagless.yaml").write_text(
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        f"outbox: {{path: {workdir / 'tagless.db'}}}\n"
        f"admin: {{host: 127.0.0.1, port: {admin_port}, token: {ADMIN_TOKEN}}}\n"
        "logging: {level: warning, format: json}\n"
    )
    (config / "stores" / "bench.yaml").write_text(
        "store: bench\n"
        f"write_keys: [{WRITE_KEY}]\n"
        "client_ip: {trusted_proxies: [127.0.0.1/32]}\n"
        "destinations:\n"
        f'  - {{id: hook, type: webhook, url: "http://127.0.0.1:{sink_port}{hook_path}"}}\n'
    )
    return config


def tagless_service(
    settings: Settings, workdir: Path, port: int, sink_port: int, hook_path: str = "/hook"
) -> tuple[Service, str]:
    config = write_tagless_config(workdir, port, free_port(), sink_port, hook_path)
    argv = [str(settings.tagless), "serve", "--config", str(config)]
    service = Service("tagless", argv, env={"TAGLESS_ADMIN_TOKEN": ADMIN_TOKEN})
    return service, f"http://127.0.0.1:{port}/healthz"


@contextlib.contextmanager
def server(
    report: Report, settings: Settings, kind: str, sink: Sink | None
) -> Iterator[tuple[Service, str]]:
    """A fresh server (fresh database) of ``kind``; yields it and its base URL."""
    with tempfile.TemporaryDirectory(prefix=f"tagless-bench-{kind}-") as tmp:
        port = free_port()
        if kind == "bare":
            service, ready = bare_service(Path(tmp), port)
        else:
            assert sink is not None
            path = TAGLESS_KINDS[kind][0] if kind in TAGLESS_KINDS else "/hook"
            service, ready = tagless_service(settings, Path(tmp), port, sink.port, path)
        report.command(service.argv, service.env)
        with service:
            service.wait_ready(ready)
            yield service, f"http://127.0.0.1:{port}"


class Sink(Service):
    """bench/sink.py, the webhook destination of every Tagless run."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__("sink", [PYTHON, str(BENCH / "sink.py"), "--port", str(self.port)])

    def stats(self) -> dict[str, Any]:
        status, body = http_get(f"{self.url}/stats")
        if status != 200:
            raise BenchError(f"sink /stats answered {status}")
        result: dict[str, Any] = orjson.loads(body)
        return result

    def reset(self) -> None:
        if http_post(f"{self.url}/reset") != 200:
            raise BenchError("sink /reset failed")


def processes() -> Iterator[tuple[int, int, float]]:
    """(pid, process group, CPU seconds) of every user-space process (kernel threads left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it just exited
            continue
        pid, ppid, pgrp = int(stat.parent.name), int(fields[1]), int(fields[2])
        if pid != 2 and ppid != 2:  # kthreadd and its children
            yield pid, pgrp, (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def others_cpu(ours: set[int]) -> dict[int, float]:
    """CPU seconds of every process outside the process groups ``ours``, by pid."""
    return {pid: cpu for pid, pgrp, cpu in processes() if pgrp not in ours}


def other_pct(before: dict[int, float], after: dict[int, float], elapsed: float) -> float:
    """% of one core that unrelated processes used between two :func:`others_cpu` readings.

    A lower bound: a process that started and exited in between is not seen.
    """
    used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    return max(0.0, used) / elapsed * 100


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by the server and by processes that are not part of the bench."""

    at: float
    server: float
    others: dict[int, float]

    @classmethod
    def take(cls, server: Service, sink: Sink | None) -> CpuSnapshot:
        ours = {os.getpgrp(), server.pid} | ({sink.pid} if sink else set())
        return cls(time.monotonic(), server.cpu_seconds(), others_cpu(ours))

    def percent_since(self, before: CpuSnapshot) -> tuple[float, float]:
        """(server %, unrelated processes %) of one core."""
        elapsed = self.at - before.at
        server = (self.server - before.server) / elapsed * 100
        return server, other_pct(before.others, self.others, elapsed)


def machine_busy_pct(seconds: float = 2.0) -> float:
    """How much CPU processes other than this one use right now, in % of one core."""
    ours = {os.getpgrp()}
    before, start = others_cpu(ours), time.monotonic()
    time.sleep(seconds)
    return other_pct(before, others_cpu(ours), time.monotonic() - start)


def wait_for_idle(seconds: float) -> None:
    """Wait (at most ``seconds``) until other processes use under OTHER_LOAD_LIMIT_PCT."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = machine_busy_pct()
        if busy < OTHER_LOAD_LIMIT_PCT:
            return
        print(f"waiting for an idle machine: {busy:.0f}% of one core busy", flush=True)


# --- the measurements ------------------------------------------------------------------------


def measure_ingest(
    report: Report, settings: Settings, kind: str, figure: str, body: Path, sink: Sink | None
) -> Result:
    """Warm up, then one measured wrk run against a fresh server."""
    label = TAGLESS_KINDS[kind][1] if kind in TAGLESS_KINDS else "bare"
    print(f"  {label:26} {figure:6} ... ", end="", flush=True)
    if sink is not None:
        sink.reset()
    with server(report, settings, kind, sink) as (service, base):
        run_wrk(report, settings, base, figure, body, settings.warmup)
        before = CpuSnapshot.take(service, sink)
        wrk = run_wrk(report, settings, base, figure, body, settings.duration)
        cpu, other = CpuSnapshot.take(service, sink).percent_since(before)
        delivered = int(sink.stats()["events"]) if sink and kind in TAGLESS_KINDS else None
        if not service.alive():
            raise BenchError(f"{label} died during the run:\n{service.log_tail()}")
    print(f"{wrk.events_per_s:,.0f} events/s", flush=True)
    return Result(label, figure, wrk, cpu, other, delivered)


def measure_e2e(report: Report, settings: Settings, body: Path, sink: Sink) -> E2E:
    """Post batches for ``duration`` s, then wait until the sink holds every acknowledged event."""
    print("  end to end ... ", end="", flush=True)
    sink.reset()
    with server(report, settings, "tagless", sink) as (service, base):
        before = CpuSnapshot.take(service, sink)
        first_request_at = time.time()
        wrk = run_wrk(report, settings, base, "batch", body, settings.duration)
        ingest_end_at = time.time()
        stats, complete = wait_for_sink(settings, sink, wrk.acked_events, service)
        _, other = CpuSnapshot.take(service, sink).percent_since(before)
    result = E2E(wrk, first_request_at, ingest_end_at, stats, complete, other)
    rate = f"{result.events_per_s:,.0f} events/s" if result.events_per_s else "incomplete"
    print(rate, flush=True)
    return result


def wait_for_sink(
    settings: Settings, sink: Sink, acked: int, service: Service
) -> tuple[dict[str, Any], bool]:
    """Poll the sink until it holds ``acked`` distinct events and no new ones came for a while."""
    deadline = time.monotonic() + settings.e2e_timeout
    while True:
        stats = sink.stats()
        last_new_at = stats["last_new_at"]
        settled = last_new_at is not None and time.time() - last_new_at >= settings.settle
        if stats["distinct"] >= acked and settled:
            return stats, True
        if time.monotonic() > deadline or not service.alive():
            return stats, False
        time.sleep(0.2)


# --- machine facts ---------------------------------------------------------------------------


def machine_facts() -> dict[str, str]:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout or wrk.stderr).splitlines()[0].split(" Copyright")[0].strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    packages = ", ".join(f"{p} {metadata.version(p)}" for p in ("aiohttp", "orjson", "uvloop"))
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "CPU": cpu,
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "wrk": wrk_version,
        "packages": packages,
        "other processes' CPU before the bench": f"{machine_busy_pct():.0f}% of one core",
        "orjson.loads of one event": f"{loads_ns():,.0f} ns (limits.md: 1,454 ns)",
        "4 KiB append + fdatasync": f"p50 {fdatasync_ms():.3f} ms (limits.md: 0.117 ms)",
    }


def loads_ns() -> float:
    body = payloads.single_template()
    timer = timeit.Timer(lambda: orjson.loads(body))
    number, _ = timer.autorange()
    return min(timer.repeat(3, number)) / number * 1e9


def fdatasync_ms(seconds: float = 1.0) -> float:
    with tempfile.TemporaryDirectory(prefix="tagless-bench-fsync-") as tmp:
        fd = os.open(Path(tmp) / "f.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            laps: list[float] = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                start = time.perf_counter()
                os.write(fd, b"x" * 4096)
                os.fdatasync(fd)
                laps.append(time.perf_counter() - start)
        finally:
            os.close(fd)
    return sorted(laps)[len(laps) // 2] * 1000


# --- the report ------------------------------------------------------------------------------


def render(report: Report, settings: Settings) -> str:
    lines = [f"# Tagless bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    lines += ["| Machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.facts.items()]
    lines += ["", *render_ingest(report, settings), "", *render_ratios(report)]
    if report.e2e is not None:
        lines += ["", *render_e2e(report.e2e, settings)]
    lines += ["", *render_notes(report, settings)]
    if report.errors:
        lines += ["", "## Errors", "", *[f"- {e}" for e in report.errors]]
    lines += ["", "## Commands", "", "```", *report.commands, "```"]
    return "\n".join(lines) + "\n"


def render_ingest(report: Report, settings: Settings) -> list[str]:
    lines = [
        f"## Durable ingest ({settings.connections} connections, {settings.warmup} s warm-up, "
        f"one {settings.duration} s run per row)",
        "",
        "| Figure | Server | **events/s** | req/s | p50 ms | p99 ms | non-2xx "
        "| socket errors | server CPU % | other CPU % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report.results:
        w = r.wrk
        lines.append(
            f"| {FIGURES[r.figure][2]} | {r.server} | **{w.events_per_s:,.0f}** | {w.rps:,.0f} "
            f"| {w.p50_ms:.2f} | {w.p99_ms:.2f} | {w.status_errors} | {w.errors_text()} "
            f"| {r.cpu_pct:.0f} | {r.other_cpu_pct:.0f} |"
        )
    return lines


def render_ratios(report: Report) -> list[str]:
    lines = [
        "## Tagless / bare",
        "",
        "| Figure | Tagless events/s | bare events/s | **ratio** | goal | met |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for figure, goal in GOALS.items():
        for _, label in TAGLESS_KINDS.values():
            lines.append(_ratio_row(report, figure, goal, label))
    return lines


def _ratio_row(report: Report, figure: str, goal: float, label: str) -> str:
    tagless, bare = report.find(label, figure), report.find("bare", figure)
    t = f"{tagless.wrk.events_per_s:,.0f}" if tagless else "n/a"
    b = f"{bare.wrk.events_per_s:,.0f}" if bare else "n/a"
    shown, met = "n/a", "n/a"
    if tagless and bare and bare.wrk.events_per_s:
        ratio = tagless.wrk.events_per_s / bare.wrk.events_per_s
        shown, met = f"**{ratio:.0%}**", "yes" if ratio >= goal else "**no**"
        if max(tagless.other_cpu_pct, bare.other_cpu_pct) > OTHER_LOAD_LIMIT_PCT:
            met += " (⚠ other load during the runs: ratio unreliable)"
    return f"| {FIGURES[figure][2]}, {label} | {t} | {b} | {shown} | ≥ {goal:.0%} | {met} |"


def render_e2e(e2e: E2E, settings: Settings) -> list[str]:
    s, w = e2e.sink, e2e.wrk
    start, last = e2e.first_request_at, e2e.last_delivery_at
    rows = [
        ("**events/s** (acknowledged / first request → last delivery)", _e2e_rate(e2e)),
        ("acknowledged events", f"{e2e.acked:,}"),
        ("ingest errors", f"{w.status_errors} non-2xx, socket errors {w.errors_text()}"),
        ("first request → first delivery", _seconds(_since(s["first_at"], start))),
        ("first request → last delivery", _seconds(_since(last, start))),
        ("ingest end → last delivery", _seconds(_since(last, e2e.ingest_end_at))),
        ("events received by the sink", f"{s['events']:,} in {s['requests']:,} deliveries"),
        ("distinct event ids", f"{s['distinct']:,}"),
        ("**duplicates** (by event_id)", f"**{s['duplicates']:,}**"),
        ("acknowledged but missing at the sink", f"{e2e.missing:,}"),
        ("events without event_id / rejected deliveries", f"{s['without_id']} / {s['rejected']}"),
        ("other CPU % (unrelated processes, see the notes)", f"{e2e.other_cpu_pct:.0f}"),
    ]
    return [
        f"## End to end: Tagless → webhook sink (batches of {BATCH_SIZE} posted for "
        f"{settings.duration} s)",
        "",
        "| | |",
        "|---|--:|",
        *[f"| {name} | {value} |" for name, value in rows],
    ]


def _e2e_rate(e2e: E2E) -> str:
    if e2e.events_per_s:
        return f"**{e2e.events_per_s:,.0f}**"
    return "**incomplete** (timed out or Tagless exited before the sink had every event)"


def _since(at: float | None, start: float) -> float | None:
    return None if at is None else at - start


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def render_notes(report: Report, settings: Settings) -> list[str]:
    notes = [
        "## Notes",
        "",
        "- One run per figure on this machine (no medians). Bare and Tagless runs alternate, so "
        "slow drift of the VM hits both; expect several % run-to-run noise on top of that.",
        "- Every ingest row starts a fresh server with a fresh database (Tagless: a fresh outbox). "
        "Every request carries fresh messageIds (post.lua fills a per-run, per-thread counter "
        "into every event), so Tagless's de-duplication never drops a bench event.",
        "- Both servers get the same wrk command, the same post.lua and the same body templates "
        f"({len(payloads.single_template())} B per event template, "
        f"{len(payloads.batch_template())} B per batch template, before the ids are filled in), "
        "and the same `Authorization: Basic base64(bench-key:)` header.",
        "- bare = bench/bare_server.py: aiohttp + orjson + uvloop, sqlite3 WAL, synchronous=FULL, "
        "one writer thread, natural group commit (N=0, up to 1000 rows), no secondary index; it "
        "answers 200 after the commit (limits.md §4).",
        "- Tagless is measured twice per figure, its store having one webhook destination: "
        "*destination down* (the sink answers 503 Retry-After 3600, the destination pauses after "
        "its first batch, so ingest runs alone like the bare server; every event is still routed "
        "to it and waits in the outbox) and *delivering* (the sink accepts, so delivery, and the "
        "sink process, share the 2 cores with ingest and wrk, as in production).",
        "- Server CPU % = user + system time of the server's process group during the measured "
        "run (100% = one core). Other CPU % = CPU of user processes that are not part of the "
        "bench (not the server, sink, wrk or run.py) during that run: unrelated work that "
        f"competed for the 2 cores; above {OTHER_LOAD_LIMIT_PCT:.0f}% the ratio is flagged. "
        "non-2xx = responses with HTTP status ≥ 400 as counted by wrk.",
        f"- End to end: a fresh Tagless and outbox, no warm-up; wrk posts batches for "
        f"{settings.duration} s; events/s = acknowledged events / (sink's receipt time of the last "
        "delivery that brought a new event id − time just before wrk started). Events committed "
        "but not acknowledged when wrk stopped may also arrive; they are in the sink counts.",
    ]
    for r in report.results:
        if r.sink_events is not None:
            notes.append(
                f"- During the Tagless {r.figure} run (warm-up + measured), the sink received "
                f"{r.sink_events:,} events."
            )
    return notes


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[set[str], Settings]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=("bare", "tagless", "e2e"),
        help="run only these parts (repeatable); default: all",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up")
    parser.add_argument(
        "--e2e-timeout", type=float, default=300.0, help="max seconds to wait for the sink"
    )
    parser.add_argument("--tagless", type=Path, default=TAGLESS, help="the tagless executable")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="first wait up to S seconds for other processes to leave the machine idle",
    )
    args = parser.parse_args(argv)
    parts = set(args.only or ("bare", "tagless", "e2e"))
    settings = Settings(
        duration=args.duration,
        warmup=args.warmup,
        e2e_timeout=args.e2e_timeout,
        tagless=args.tagless.resolve(),
        wait_idle=args.wait_idle,
    )
    return parts, settings


def run(parts: set[str], settings: Settings, report: Report) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    single, batch = payloads.write_templates(OUT / "bodies", BATCH_SIZE)
    bodies = {"single": single, "batch": batch}
    need_sink = bool(parts & {"tagless", "e2e"})
    if need_sink and not settings.tagless.exists():
        raise BenchError(f"{settings.tagless} not found (pip install -e . first)")
    with contextlib.ExitStack() as stack:
        sink = None
        if need_sink:
            sink = stack.enter_context(Sink())
            report.command(sink.argv)
            sink.wait_ready(f"{sink.url}/stats")
        kinds = (["bare"] if "bare" in parts else []) + (
            list(TAGLESS_KINDS) if "tagless" in parts else []
        )
        for figure in FIGURES:
            for kind in kinds:
                result = measure_ingest(report, settings, kind, figure, bodies[figure], sink)
                report.results.append(result)
        if "e2e" in parts:
            assert sink is not None
            report.e2e = measure_e2e(report, settings, batch, sink)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the servers
    parts, settings = parse_args(argv)
    ensure_wrk()
    wait_for_idle(settings.wait_idle)
    report = Report(facts=machine_facts())
    print(f"bench: {', '.join(sorted(parts))}; logs in {LOGS.relative_to(ROOT)}/", flush=True)
    status = 0
    try:
        run(parts, settings, report)
    except BenchError as exc:
        report.errors.append(str(exc))
        status = 1
    bad = [r for r in report.results if r.wrk.status_errors or r.wrk.socket_error_total]
    if bad or (report.e2e and (report.e2e.wrk.status_errors or not report.e2e.complete)):
        report.errors.append("some runs had errors or did not complete; see the tables")
        status = status or 1
    text = render(report, settings)
    (OUT / "latest.md").write_text(text)
    print()
    print(text, end="")
    print(f"\n(written to {(OUT / 'latest.md').relative_to(ROOT)})")
    return status


if __name__ == "__main__":
    sys.exit(main())
