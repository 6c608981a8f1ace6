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
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import payloads
from common import ADMIN_TOKEN, BENCH, PYTHON, TAGLESS_KINDS, WRITE_KEY, BenchError, Settings
from load import E2E, Report, Result, run_wrk
from procs import CpuSnapshot, Service, Sink, free_port, machine_busy_pct

# --- servers ---------------------------------------------------------------------------------


def bare_service(workdir: Path, port: int) -> tuple[Service, str]:
    argv = [PYTHON, str(BENCH / "bare_server.py"), "--db", str(workdir / "bare.db")]
    argv += ["--port", str(port), "--sync", "FULL", "--max-rows", "1000"]
    return Service("bare", argv), f"http://127.0.0.1:{port}/healthz"


def write_tagless_config(
    workdir: Path,
    port: int,
    admin_port: int,
    sink_port: int,
    hook_path: str = "/hook",
    *,
    stitching: bool = True,
) -> Path:
    config = workdir / "config"
    (config / "stores").mkdir(parents=True)
    (config / "tagless.yaml").write_text(
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
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
        "destinations:\n"
        f'  - {{id: hook, type: webhook, url: "http://127.0.0.1:{sink_port}{hook_path}"}}\n'
    )
    return config


def tagless_service(
    settings: Settings, workdir: Path, port: int, sink_port: int, hook_path: str = "/hook"
) -> tuple[Service, str]:
    config = write_tagless_config(
        workdir, port, free_port(), sink_port, hook_path, stitching=settings.stitching
    )
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
        peak_rss = service.peak_rss_mb()
        delivered = int(sink.stats()["events"]) if sink and kind in TAGLESS_KINDS else None
        if not service.alive():
            raise BenchError(f"{label} died during the run:\n{service.log_tail()}")
    print(f"{wrk.events_per_s:,.0f} events/s", flush=True)
    return Result(label, figure, wrk, cpu, other, peak_rss, delivered)


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
        peak_rss = service.peak_rss_mb()
    result = E2E(wrk, first_request_at, ingest_end_at, stats, complete, other, peak_rss)
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
