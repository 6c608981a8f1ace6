"""Cost growth and drain: batch ingest with 10k and 1M events waiting, then the 1M delivered."""

from __future__ import annotations

import time
from pathlib import Path

from common import Settings
from load import Drain, Growth, Report, Result, run_wrk
from measure import server, wait_for
from prefill import prefill
from procs import CpuSnapshot, Service
from rig import Rig


def measure_backlog(report: Report, settings: Settings, body: Path, rig: Rig) -> None:
    """For the bare server and Tagless (one webhook, in an outage): fill the store to the small
    and to the large backlog, measuring batch ingest at each; then end Tagless's outage and time
    the delivery of everything it acknowledged."""
    for kind in ("bare", "hook"):
        label = "bare" if kind == "bare" else "Tagless, webhook in an outage"
        rig.reset()
        rig.sink.outage(True)
        with server(report, settings, kind, rig) as (service, base):
            acked = 0
            for backlog in (settings.small_backlog, settings.backlog):
                acked += fill(base, body, backlog - acked, settings.message_ids == "random")
                result = measure_at(report, settings, service, base, body, rig, label, acked)
                report.growth.append(Growth(label, backlog, acked, result, service.rss_mb()))
                acked += result.wrk.acked_events
            if kind == "hook":
                report.drain = drain(settings, service, rig, acked)
        rig.sink.outage(False)


def fill(base: str, body: Path, events: int, random_ids: bool) -> int:
    """Post batches until about ``events`` are acknowledged; the number acknowledged."""
    if events <= 0:
        return 0
    print(f"  prefill {events:,} events ... ", end="", flush=True)
    started = time.monotonic()
    acked = prefill(base, body, events, random_ids=random_ids)
    print(f"{acked:,} in {time.monotonic() - started:.0f} s", flush=True)
    return acked


def measure_at(
    report: Report,
    settings: Settings,
    service: Service,
    base: str,
    body: Path,
    rig: Rig,
    label: str,
    backlog: int,
) -> Result:
    print(f"  {label:34} batch, {backlog:,} waiting ... ", end="", flush=True)
    before = CpuSnapshot.take(service, rig.services)
    wrk = run_wrk(report, settings, base, "batch", body, settings.duration)
    cpu, other = CpuSnapshot.take(service, rig.services).percent_since(before)
    print(f"{wrk.events_per_s:,.0f} events/s, p99 {wrk.p99_ms:.1f} ms", flush=True)
    return Result(label, "batch", wrk, cpu, other, service.peak_rss_mb())


def drain(settings: Settings, service: Service, rig: Rig, acked: int) -> Drain:
    print(f"  drain {acked:,} events to the webhook ... ", end="", flush=True)
    rig.sink.reset()
    rig.sink.outage(False)
    started = time.time()
    stats, complete = wait_for(settings, [rig.sink], acked, service)
    sink = stats["sink"]
    last = sink["last_new_at"]
    result = Drain(
        events=acked,
        seconds=None if last is None else last - started,
        complete=complete,
        peak_rss_mb=service.peak_rss_mb(),
        duplicates=int(sink["duplicates"]),
    )
    rate = result.events_per_s
    print(f"{rate:,.0f} events/s" if rate else f"incomplete ({sink['distinct']:,})", flush=True)
    return result
