"""`make bench`: Tagless delivering to five platforms against a bare group-commit baseline:
durable ingest, latency at half of saturation, end to end, cost growth with a backlog, drain."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import payloads
import postgres_cluster
from backlog import measure_backlog
from common import (
    BATCH_SIZE,
    FIGURES,
    LOGS,
    MAIN_KIND,
    OUT,
    ROOT,
    TAGLESS,
    TAGLESS_KINDS,
    BenchError,
    Settings,
)
from load import Report, ensure_wrk
from measure import label_of, machine_facts, measure_e2e, measure_ingest
from procs import wait_for_idle
from report import render
from rig import Rig

PARTS = ("bare", "tagless", "latency", "e2e", "backlog")
DOC = ROOT / "docs" / "performance.md"

# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[set[str], Settings, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only these parts (repeatable); default: all",
    )
    parser.add_argument(
        "--duration", type=int, default=Settings.duration, help="seconds per measured run"
    )
    parser.add_argument("--warmup", type=int, default=Settings.warmup, help="seconds of warm-up")
    parser.add_argument(
        "--rounds",
        type=int,
        default=Settings.rounds,
        help="rounds of every ingest row, bare and Tagless interleaved; medians are reported",
    )
    parser.add_argument(
        "--e2e-timeout",
        type=float,
        default=Settings.e2e_timeout,
        help="max seconds to wait for every destination to hold every event",
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
        "--backlog",
        type=int,
        default=Settings.backlog,
        help="events in the outbox for the large cost-growth point and the drain "
        "(the small one: %(default)s / 100)",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        default=DOC,
        help="where a run of every part writes its report besides bench/out/latest.md "
        "(default: docs/performance.md; '-' for nowhere)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample Tagless with py-spy during the end-to-end run; the report lists where "
        "the time went (bench/out/profile-e2e.txt has the stacks)",
    )
    parser.add_argument(
        "--stitching",
        choices=("on", "off"),
        default="on",
        help="identity stitching of the bench store (off: to measure what it costs)",
    )
    parser.add_argument(
        "--message-ids",
        choices=("random", "sequential"),
        default=Settings.message_ids,
        help="random: each messageId starts with 64 random bits, as SDKs' UUIDs do (Tagless's"
        " de-duplication index takes them anywhere); sequential: ids in the order sent",
    )
    parser.add_argument(
        "--postgres",
        choices=("auto", "on", "off"),
        default="auto",
        help="PostgreSQL outbox figures beside SQLite's (bench/postgres_cluster.py); auto: when"
        " PostgreSQL answers on 127.0.0.1:5432",
    )
    parser.add_argument(
        "--ingest-processes",
        type=int,
        default=Settings.ingest_processes,
        help="Tagless's server.ingest_processes (0: ingest in the delivering process)",
    )
    parser.add_argument(
        "--delivery-nice",
        type=int,
        default=Settings.delivery_nice,
        help="Tagless's server.delivery_nice (with ingest or delivery processes)",
    )
    parser.add_argument(
        "--delivery-processes",
        type=int,
        default=Settings.delivery_processes,
        help="Tagless's server.delivery_processes (0: the main process delivers)",
    )
    parser.add_argument(
        "--delivery-idle",
        choices=("on", "off"),
        default="on" if Settings.delivery_idle else "off",
        help="Tagless's server.delivery_idle (the delivering processes run SCHED_IDLE)",
    )
    args = parser.parse_args(argv)
    parts = set(args.only or PARTS)
    # auto: beside a whole run (not a part asked for with --only) when PostgreSQL answers
    auto = args.postgres == "auto" and not args.only and postgres_cluster.postgres_answers()
    if args.postgres == "on" or auto:
        parts.add("postgres")
    settings = Settings(
        backlog=args.backlog,
        small_backlog=max(1, args.backlog // 100),
        profile=args.profile,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        e2e_timeout=args.e2e_timeout,
        tagless=args.tagless.resolve(),
        wait_idle=args.wait_idle,
        stitching=args.stitching == "on",
        message_ids=args.message_ids,
        ingest_processes=args.ingest_processes,
        delivery_nice=args.delivery_nice,
        delivery_processes=args.delivery_processes,
        delivery_idle=args.delivery_idle == "on",
    )
    whole = parts - {"postgres"} == set(PARTS)
    doc = None if str(args.doc) == "-" or not whole else args.doc
    return parts, settings, doc


def run(parts: set[str], settings: Settings, report: Report) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    single, batch = payloads.write_templates(OUT / "bodies", BATCH_SIZE)
    bodies = {"single": single, "batch": batch}
    needs_rig = bool(parts - {"bare"})
    if needs_rig and not settings.tagless.exists():
        raise BenchError(f"{settings.tagless} not found (pip install -e . first)")
    with contextlib.ExitStack() as stack:
        rig = None
        if needs_rig:
            rig = stack.enter_context(Rig(five=True))
            for service in rig.services:
                report.command(service.argv)
        kinds = (["bare"] if "bare" in parts else []) + (
            list(TAGLESS_KINDS) if "tagless" in parts else []
        )
        for round_ in range(settings.rounds if kinds else 0):
            with timed(report, f"ingest, round {round_ + 1} of {settings.rounds}"):
                for figure in FIGURES:
                    for kind in kinds:
                        result = measure_ingest(report, settings, kind, figure, bodies[figure], rig)
                        report.results.append(dataclasses.replace(result, round=round_))
        run_parts(parts, settings, report, bodies, rig)


def run_parts(
    parts: set[str], settings: Settings, report: Report, bodies: dict[str, Path], rig: Rig | None
) -> None:
    """The parts after the ingest rounds: latency, end to end, backlog."""
    batch = bodies["batch"]
    if "latency" in parts:
        with timed(report, "latency at half of saturation"):
            # rounds, bare and Tagless one after the other, as for throughput: one 5 s run's
            # p99 is its slowest 1%, and this VM's drift moved it 2x from one run to the next
            for round_ in range(settings.rounds):
                for figure in FIGURES:
                    for kind in ("bare", MAIN_KIND):
                        body = bodies[figure]
                        rate = saturation_rps(report, settings, kind, figure, body, rig) / 2
                        half = measure_ingest(report, settings, kind, figure, body, rig, rate=rate)
                        report.half.append(dataclasses.replace(half, round=round_))
    if "e2e" in parts:
        assert rig is not None
        with timed(report, "end to end"):
            report.e2e = measure_e2e(report, settings, batch, rig)
    if "backlog" in parts:
        assert rig is not None
        with timed(report, "cost growth and drain"):
            measure_backlog(report, settings, batch, rig)


@contextlib.contextmanager
def timed(report: Report, part: str) -> Iterator[None]:
    print(part, flush=True)
    started = time.monotonic()
    try:
        yield
    finally:
        report.timings[part] = time.monotonic() - started


def saturation_rps(
    report: Report, settings: Settings, kind: str, figure: str, body: Path, rig: Rig | None
) -> float:
    """The median saturated run's requests/s of ``kind``, measured now if no round ran."""
    found = report.median(label_of(kind), figure)
    if found is None:
        found = measure_ingest(report, settings, kind, figure, body, rig)
        report.results.append(found)
    return found.wrk.rps


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the servers
    parts, settings, doc = parse_args(argv)
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
    incomplete = (report.e2e and not report.e2e.complete) or (
        report.drain and not report.drain.complete
    )
    if bad or incomplete or (report.e2e and report.e2e.wrk.status_errors):
        report.errors.append("some runs had errors or did not complete; see the tables")
        status = status or 1
    text = render(report, settings)
    if "postgres" in parts:
        text += postgres_cluster.section(settings.duration)
    (OUT / "latest.md").write_text(text)
    print()
    print(text, end="")
    written = [OUT / "latest.md"]
    if doc is not None:
        doc.write_text(text)
        written.append(doc)
    print(f"\n(written to {', '.join(str(p) for p in written)})")
    return status


if __name__ == "__main__":
    sys.exit(main())
