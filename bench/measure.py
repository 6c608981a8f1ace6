"""The measurements: fresh servers, ingest and end-to-end runs, and the machine's facts."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import subprocess
import tempfile
import time
import timeit
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import payloads
from common import ADMIN_TOKEN, BENCH, PYTHON, TAGLESS_KINDS, WRITE_KEY, BenchError, Settings
from load import E2E, Report, Result, run_wrk
from procs import Counter, CpuSnapshot, Service, free_port, machine_busy_pct
from profiling import sampled, summary
from rig import SECRETS, Rig

# --- servers ---------------------------------------------------------------------------------


def bare_service(workdir: Path, port: int) -> tuple[Service, str]:
    argv = [PYTHON, str(BENCH / "bare_server.py"), "--db", str(workdir / "bare.db")]
    argv += ["--port", str(port), "--sync", "FULL", "--max-rows", "1000"]
    return Service("bare", argv), f"http://127.0.0.1:{port}/healthz"


def write_tagless_config(
    workdir: Path,
    port: int,
    admin_port: int,
    destinations: str,
    *,
    stitching: bool = True,
    processes: tuple[int, int, int, bool] = (0, 0, 0, False),
) -> Path:
    """Tagless's config directory; ``processes``: (server.ingest_processes, delivery_nice,
    delivery_processes, delivery_idle)."""
    config = workdir / "config"
    (config / "stores").mkdir(parents=True)
    (config / "tagless.yaml").write_text(
        f"server: {{host: 127.0.0.1, port: {port}, ingest_processes: {processes[0]},"
        f" delivery_nice: {processes[1]}, delivery_processes: {processes[2]},"
        f" delivery_idle: {'true' if processes[3] else 'false'}}}\n"
        # the backlog cap (200,000 by default) would refuse a 10 s run's events: raised, so the
        # figures measure ingest, not backpressure
        f"outbox: {{path: {workdir / 'tagless.db'}, max_pending_events: 100000000}}\n"
        f"admin: {{host: 127.0.0.1, port: {admin_port}, token: {ADMIN_TOKEN}}}\n"
        "logging: {level: warning, format: json}\n"
    )
    (config / "stores" / "bench.yaml").write_text(
        "store: bench\n"
        f"write_keys: [{WRITE_KEY}]\n"
        "client_ip: {trusted_proxies: [127.0.0.1/32]}\n"
        # as a store that uses every identity feature would: its ingest cost is part of the figure
        f"stitching: {{enabled: {'true' if stitching else 'false'}}}\n"
        "destinations:\n" + destinations
    )
    return config


def tagless_service(
    settings: Settings, workdir: Path, port: int, rig: Rig, destinations: str
) -> tuple[Service, str]:
    block = rig.destinations(destinations, workdir)
    config = write_tagless_config(
        workdir,
        port,
        free_port(),
        block,
        stitching=settings.stitching,
        processes=(
            settings.ingest_processes,
            settings.delivery_nice,
            settings.delivery_processes,
            settings.delivery_idle,
        ),
    )
    argv = [str(settings.tagless), "serve", "--config", str(config)]
    service = Service("tagless", argv, env={"TAGLESS_ADMIN_TOKEN": ADMIN_TOKEN, **SECRETS})
    return service, f"http://127.0.0.1:{port}/healthz"


@contextlib.contextmanager
def server(
    report: Report, settings: Settings, kind: str, rig: Rig | None
) -> Iterator[tuple[Service, str]]:
    """A fresh server (fresh database) of ``kind`` (``bare``, a TAGLESS_KINDS key, or a
    destination set of bench/rig.py); yields it and its base URL."""
    with tempfile.TemporaryDirectory(prefix=f"tagless-bench-{kind}-") as tmp:
        port = free_port()
        if kind == "bare":
            service, ready = bare_service(Path(tmp), port)
        else:
            assert rig is not None
            destinations = TAGLESS_KINDS[kind][0] if kind in TAGLESS_KINDS else kind
            service, ready = tagless_service(settings, Path(tmp), port, rig, destinations)
        report.command(service.argv, service.env)
        with service:
            service.wait_ready(ready)
            yield service, f"http://127.0.0.1:{port}"


# --- the measurements ------------------------------------------------------------------------


def label_of(kind: str) -> str:
    return TAGLESS_KINDS[kind][1] if kind in TAGLESS_KINDS else "bare"


def measure_ingest(
    report: Report,
    settings: Settings,
    kind: str,
    figure: str,
    body: Path,
    rig: Rig | None,
    *,
    rate: float | None = None,
) -> Result:
    """Warm up, then one measured wrk run against a fresh server (at ``rate`` requests/s if set,
    else as fast as it answers)."""
    label = label_of(kind)
    at = "" if rate is None else f" at {rate:,.0f} req/s"
    print(f"  {label:34} {figure:6}{at} ... ", end="", flush=True)
    if rig is not None:
        rig.reset()
    with server(report, settings, kind, rig) as (service, base):
        run_wrk(report, settings, base, figure, body, settings.warmup, rate=rate)
        helpers = rig.services if rig else []
        before = CpuSnapshot.take(service, helpers)
        wrk = run_wrk(report, settings, base, figure, body, settings.duration, rate=rate)
        cpu, other = CpuSnapshot.take(service, helpers).percent_since(before)
        peak_rss = service.peak_rss_mb()
        delivered = None
        if rig is not None and kind in TAGLESS_KINDS:
            delivered = sum(int(c.stats()["events"]) for c in rig.counters)
        if not service.alive():
            raise BenchError(f"{label} died during the run:\n{service.log_tail()}")
    print(f"{wrk.events_per_s:,.0f} events/s, p99 {wrk.p99_ms:.1f} ms", flush=True)
    return Result(label, figure, wrk, cpu, other, peak_rss, delivered, offered_rps=rate)


def measure_e2e(report: Report, settings: Settings, body: Path, rig: Rig) -> E2E:
    """Post batches for ``duration`` s to Tagless delivering to the five platforms, then wait
    until every fake holds every acknowledged event."""
    print("  end to end, 5 platforms ... ", end="", flush=True)
    rig.reset()
    with (
        server(report, settings, "five", rig) as (service, base),
        sampled(service.pid, "e2e", settings.profile) as profile,
    ):
        before = CpuSnapshot.take(service, rig.services)
        first_request_at = time.time()
        wrk = run_wrk(report, settings, base, "batch", body, settings.duration)
        ingest_end_at = time.time()
        received, complete = wait_for(settings, list(rig.fakes.values()), wrk.acked_events, service)
        cpu_s = service.cpu_seconds() - before.server
        _, other = CpuSnapshot.take(service, rig.services).percent_since(before)
        peak_rss = service.peak_rss_mb()
    if profile is not None:
        report.profile = summary(profile)
    result = E2E(wrk, first_request_at, ingest_end_at, received, complete, other, peak_rss, cpu_s)
    print(
        ", ".join(f"{name} {rate:,.0f}/s" for name, rate in result.rates().items() if rate),
        flush=True,
    )
    return result


def wait_for(
    settings: Settings, counters: Sequence[Counter], acked: int, service: Service
) -> tuple[dict[str, dict[str, Any]], bool]:
    """Poll the counters until each holds ``acked`` distinct events and none got new ones for a
    while; (each counter's stats by name, whether all were complete)."""
    deadline = time.monotonic() + settings.e2e_timeout
    while True:
        stats = {c.name.removeprefix("fake-"): c.stats() for c in counters}
        now = time.time()
        done = all(
            s["distinct"] >= acked
            and s["last_new_at"] is not None
            and now - s["last_new_at"] >= settings.settle
            for s in stats.values()
        )
        if done:
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
        "orjson.loads of one event": f"{loads_ns():,.0f} ns (reference: 1,454 ns)",
        "4 KiB append + fdatasync": f"p50 {fdatasync_ms():.3f} ms (reference: 0.117 ms)",
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
