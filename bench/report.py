"""Rendering of the bench report: the markdown tables and notes."""

from __future__ import annotations

from datetime import UTC, datetime

import payloads
from common import FIGURES, GOALS, MAIN_KIND, OTHER_LOAD_LIMIT_PCT, TAGLESS_KINDS, Settings
from load import Report, Result
from tables import other_load_seen, render_backlog, render_e2e, render_latency, render_summary

# --- the report ------------------------------------------------------------------------------


def render(report: Report, settings: Settings) -> str:
    lines = [f"# Tagless bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    if other_load_seen(report):
        lines += [
            f"> **Provisional**: other processes used more than {OTHER_LOAD_LIMIT_PCT:.0f}% of a "
            "core during some runs (column *other CPU %*), so these figures understate what "
            "this machine does alone.",
            "",
        ]
    if settings.short:
        lines += [f"> **Short run** ({settings.describe()}): not the defaults of `make bench`.", ""]
    lines += ["| Machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.facts.items()]
    lines += ["", *render_summary(report, settings)]
    lines += ["", *render_ingest(report, settings), "", *render_ratios(report, settings)]
    lines += ["", *render_latency(report, settings)]
    if report.e2e is not None:
        lines += ["", *render_e2e(report.e2e, settings)]
    lines += ["", *render_backlog(report, settings)]
    if report.profile:
        lines += ["", "## Profile of Tagless during the end-to-end run (py-spy, every process)", ""]
        lines += report.profile
    lines += ["", *render_notes(report, settings)]
    if report.timings:
        total = sum(report.timings.values())
        lines += ["", f"## Time taken: {total:.0f} s", ""]
        lines += [f"- {part}: {secs:.0f} s" for part, secs in report.timings.items()]
    if report.errors:
        lines += ["", "## Errors", "", *[f"- {e}" for e in report.errors]]
    lines += ["", "## Commands", "", "```", *report.commands, "```"]
    return "\n".join(lines) + "\n"


def render_ingest(report: Report, settings: Settings) -> list[str]:
    lines = [
        f"## Durable ingest ({settings.connections} connections, {settings.warmup} s warm-up, "
        f"{settings.duration} s measured; median of {settings.rounds} rounds)",
        "",
        "| Figure | Server | **events/s** median | [min..max] | req/s | p50 ms | p99 ms "
        "| non-2xx | socket errors | server CPU % | CPU ms / 1k events | peak RSS MiB "
        "| other CPU % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for figure in FIGURES:
        for server in ("bare", *(label for _, label in TAGLESS_KINDS.values())):
            runs, r = report.runs(server, figure), report.median(server, figure)
            if r is None:
                continue
            w = r.wrk
            spread = f"{runs[0].wrk.events_per_s:,.0f}..{runs[-1].wrk.events_per_s:,.0f}"
            lines.append(
                f"| {FIGURES[figure][2]} | {server} | **{w.events_per_s:,.0f}** | {spread} "
                f"| {w.rps:,.0f} | {w.p50_ms:.2f} | {w.p99_ms:.2f} "
                f"| {sum(x.wrk.status_errors for x in runs)} | {_socket_errors(runs)} "
                f"| {r.cpu_pct:.0f} | {r.cpu_ms_per_1k:.1f} "
                f"| {max(x.peak_rss_mb for x in runs):.0f} "
                f"| {max(x.other_cpu_pct for x in runs):.0f} |"
            )
    return lines


def _socket_errors(runs: list[Result]) -> str:
    texts = {x.wrk.errors_text() for x in runs}
    return texts.pop() if len(texts) == 1 else " / ".join(x.wrk.errors_text() for x in runs)


def render_ratios(report: Report, settings: Settings) -> list[str]:
    lines = [
        "## Tagless / bare",
        "",
        "| Figure | Tagless events/s | bare events/s | **ratio** of medians "
        "| ratio per round | goal | met |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for figure, goal in GOALS.items():
        for kind, (_, label) in TAGLESS_KINDS.items():
            shown_goal = goal if kind == MAIN_KIND else None
            lines.append(_ratio_row(report, settings, figure, shown_goal, label))
    return lines


def _ratio_row(
    report: Report, settings: Settings, figure: str, goal: float | None, label: str
) -> str:
    tagless, bare = report.median(label, figure), report.median("bare", figure)
    t = f"{tagless.wrk.events_per_s:,.0f}" if tagless else "n/a"
    b = f"{bare.wrk.events_per_s:,.0f}" if bare else "n/a"
    shown, met = "n/a", "n/a"
    if tagless and bare and bare.wrk.events_per_s:
        ratio = tagless.wrk.events_per_s / bare.wrk.events_per_s
        shown = f"**{ratio:.0%}**"
        met = "–" if goal is None else "yes" if ratio >= goal else "**no**"
        runs = report.runs(label, figure) + report.runs("bare", figure)
        if max(x.other_cpu_pct for x in runs) > OTHER_LOAD_LIMIT_PCT:
            met += " (⚠ other load during the runs: ratio unreliable)"
    per_round = []
    for round_ in range(settings.rounds):
        t_run, b_run = report.find(label, figure, round_), report.find("bare", figure, round_)
        if t_run and b_run and b_run.wrk.events_per_s:
            per_round.append(f"{t_run.wrk.events_per_s / b_run.wrk.events_per_s:.0%}")
    return (
        f"| {FIGURES[figure][2]}, {label} | {t} | {b} | {shown} | {', '.join(per_round)} "
        f"| {'–' if goal is None else f'≥ {goal:.0%}'} | {met} |"
    )


def render_notes(report: Report, settings: Settings) -> list[str]:
    notes = [
        "## Notes",
        "",
        f"- {settings.rounds} rounds; each round measures every row once, bare and Tagless one "
        "after the other, so slow drift of the VM hits both. The tables give each row's median "
        "round (its other columns are that round's; errors are summed, peak RSS and other CPU "
        "are the highest of the rounds) and the ratio of the medians; *ratio per round* pairs "
        "each Tagless run with the bare run of the same round.",
        "- Every ingest row starts a fresh server with a fresh database (Tagless: a fresh outbox). "
        "Every request carries fresh messageIds (post.lua fills a per-run, per-thread counter "
        "into every event), so Tagless's de-duplication never drops a bench event; "
        + (
            "each id starts with 64 random bits, as the UUIDs Segment's SDKs send do, so every "
            "new id lands anywhere in Tagless's de-duplication index (`--message-ids random`)."
            if settings.message_ids == "random"
            else "the ids sort in the order they are sent, so Tagless's de-duplication index "
            "grows at one end (`--message-ids sequential`; SDKs send random UUIDs)."
        ),
        "- Both servers get the same wrk command, the same post.lua and the same body templates "
        f"({len(payloads.single_template())} B per event template, "
        f"{len(payloads.batch_template())} B per batch template, before the ids are filled in), "
        "and the same `Authorization: Basic base64(bench-key:)` header.",
        "- bare = bench/bare_server.py: aiohttp + orjson + uvloop, sqlite3 WAL, synchronous=FULL, "
        "one writer thread, natural group commit (N=0, up to 1000 rows), no secondary index; it "
        "answers 200 after the commit (the design of the reference ceiling).",
        *processes_note(settings),
        "- Tagless runs with `max_pending_events` raised to 100,000,000, so that the backlog cap "
        "(200,000 undelivered events by default) does not refuse a run's events while the "
        "destination is down or slower than ingest: the figures measure ingest, not backpressure.",
        f"- Tagless's store has identity stitching "
        f"{'on' if settings.stitching else 'off (`--stitching off`)'} (every bench event carries "
        "its customer's public IP and user agent, so none needs filling and none looks its "
        "person up, as for events sent with their customer's request; each carries a new "
        "visitor's anonymousId, so stitching's index, filled after the commit, takes every one "
        "as a new id). Tagless is measured "
        "three ways per figure: *destination down* (one webhook whose sink answers 503 "
        "Retry-After 3600: the destination pauses after its first batch, so ingest runs alone "
        "like the bare server; every event is still routed to it and waits in the outbox), "
        "*delivering to 5 platforms* (Spotify CAPI, Meta CAPI, GA4 Measurement Protocol, Google "
        "Ads Data Manager and BigQuery insertAll, each against a local fake, bench/platforms.py, "
        "one process per platform, answering with the platform's success shape; delivery and "
        "the fakes share the 2 cores with ingest and wrk, the fakes under SCHED_IDLE as they "
        "stand for remote services, whose CPU is not the store's) and *file destination* (a `file` "
        "destination writing to the outbox's disk, fsynced per batch: a second fsync stream).",
        "- BigQuery goes to a fake `tabledata.insertAll` endpoint, not to the BigQuery emulator "
        "(the emulator is for the tests' correctness checks, and would measure the emulator). "
        "Google Ads and BigQuery fetch their OAuth token from the fakes' `/token` (one per hour).",
        "- Server CPU % = user + system time of the server's process group during the measured "
        "run (100% = one core). Other CPU % = CPU of user processes that are not part of the "
        "bench (not the server, the sink, the fakes, wrk or run.py) during that run: unrelated "
        f"work that competed for the 2 cores; above {OTHER_LOAD_LIMIT_PCT:.0f}% the ratio is "
        "flagged. non-2xx = responses with HTTP status ≥ 400 as counted by wrk. Peak RSS = the "
        "server's high-water resident memory (VmHWM, summed over its processes) over its "
        "warm-up and measured run.",
        f"- End to end: a fresh Tagless and outbox delivering to the 5 platforms, no warm-up; wrk "
        f"posts batches for {settings.duration} s; a platform's events/s = distinct events it "
        "received / (its fake's receipt time of the last request that brought a new event id − "
        "time just before wrk started). It counts the events committed but not yet acknowledged "
        "when wrk stopped too (they are delivered as well); *missing* compares with the "
        "acknowledged ones.",
    ]
    for figure in FIGURES:
        for _, label in TAGLESS_KINDS.values():
            received = [
                r.sink_events for r in report.runs(label, figure) if r.sink_events is not None
            ]
            if any(received):
                notes.append(
                    f"- During each {label} {figure} run (warm-up + measured), its destinations "
                    f"received {', '.join(f'{n:,}' for n in received)} events."
                )
    return notes


def processes_note(settings: Settings) -> list[str]:
    """How Tagless's processes were set (``server.ingest_processes``, ``delivery_processes``,
    ``delivery_nice``)."""
    if not settings.ingest_processes and not settings.delivery_processes:
        return ["- Tagless runs as one process: ingest and delivery share one event loop."]
    if settings.delivery_idle:
        nice = (
            ", under Linux's SCHED_IDLE policy (`delivery_idle`): they get a CPU only when "
            "ingest leaves one, so under a burst acknowledging goes first and delivery catches "
            "up from the outbox"
        )
    elif settings.delivery_nice:
        nice = (
            f", at a CPU priority lowered by {settings.delivery_nice} (`delivery_nice`): under "
            "a burst, acknowledging goes first and delivery catches up from the outbox"
        )
    else:
        nice = ""
    ingest = (
        f"`server.ingest_processes: {settings.ingest_processes}`: that many ingest processes "
        "share the port (SO_REUSEPORT) and commit to the one outbox"
        if settings.ingest_processes
        else "ingest in the main process"
    )
    delivery = (
        f"`server.delivery_processes: {settings.delivery_processes}` deal the destinations' "
        f"lanes between them (each runs its share with its own decoded events){nice}"
        if settings.delivery_processes
        else f"the main process delivers{nice}"
    )
    return [
        f"- Tagless runs with {ingest}; {delivery}. The bare reference stays one process (its "
        "ceiling is one core's worth of aiohttp + SQLite), so a ratio above what one process "
        "could reach counts the second core Tagless uses. Server CPU and RSS are summed over "
        "Tagless's processes."
    ]
