"""`make bench`: durable ingest of Tagless against a bare group-commit baseline, then end to end."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import payloads
import postgres_cluster
from common import (
    BATCH_SIZE,
    FIGURES,
    LOGS,
    OUT,
    ROOT,
    TAGLESS,
    TAGLESS_KINDS,
    BenchError,
    Settings,
)
from load import Report, ensure_wrk
from measure import machine_facts, measure_e2e, measure_ingest
from procs import Sink, wait_for_idle
from report import render

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
        "--rounds",
        type=int,
        default=3,
        help="rounds of every ingest row, bare and Tagless interleaved; medians are reported",
    )
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
    parser.add_argument(
        "--stitching",
        choices=("on", "off"),
        default="on",
        help="identity stitching of the bench store (off: to measure what it costs)",
    )
    parser.add_argument(
        "--postgres",
        choices=("auto", "on", "off"),
        default="auto",
        help="PostgreSQL outbox figures beside SQLite's (bench/postgres_cluster.py); auto: when"
        " PostgreSQL answers on 127.0.0.1:5432",
    )
    args = parser.parse_args(argv)
    parts = set(args.only or ("bare", "tagless", "e2e"))
    if args.postgres == "on" or (args.postgres == "auto" and postgres_cluster.postgres_answers()):
        parts.add("postgres")
    settings = Settings(
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        e2e_timeout=args.e2e_timeout,
        tagless=args.tagless.resolve(),
        wait_idle=args.wait_idle,
        stitching=args.stitching == "on",
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
        for round_ in range(settings.rounds):
            print(f"round {round_ + 1} of {settings.rounds}", flush=True)
            for figure in FIGURES:
                for kind in kinds:
                    result = measure_ingest(report, settings, kind, figure, bodies[figure], sink)
                    report.results.append(dataclasses.replace(result, round=round_))
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
    if "postgres" in parts:
        text += postgres_cluster.section(settings.duration)
    (OUT / "latest.md").write_text(text)
    print()
    print(text, end="")
    print(f"\n(written to {(OUT / 'latest.md').relative_to(ROOT)})")
    return status


if __name__ == "__main__":
    sys.exit(main())
