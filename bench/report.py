"""Rendering of the bench report: the markdown tables and notes."""

from __future__ import annotations

from datetime import UTC, datetime

import payloads
from common import BATCH_SIZE, FIGURES, GOALS, OTHER_LOAD_LIMIT_PCT, TAGLESS_KINDS, Settings
from load import E2E, Report, Result

# --- the report ------------------------------------------------------------------------------


def render(report: Report, settings: Settings) -> str:
    lines = [f"# Tagless bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    lines += ["| Machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.facts.items()]
    lines += ["", *render_ingest(report, settings), "", *render_ratios(report, settings)]
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
        f"{settings.duration} s measured; median of {settings.rounds} rounds)",
        "",
        "| Figure | Server | **events/s** median | [min..max] | req/s | p50 ms | p99 ms "
        "| non-2xx | socket errors | server CPU % | peak RSS MiB | other CPU % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
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
                f"| {r.cpu_pct:.0f} | {max(x.peak_rss_mb for x in runs):.0f} "
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
        for _, label in TAGLESS_KINDS.values():
            lines.append(_ratio_row(report, settings, figure, goal, label))
    return lines


def _ratio_row(report: Report, settings: Settings, figure: str, goal: float, label: str) -> str:
    tagless, bare = report.median(label, figure), report.median("bare", figure)
    t = f"{tagless.wrk.events_per_s:,.0f}" if tagless else "n/a"
    b = f"{bare.wrk.events_per_s:,.0f}" if bare else "n/a"
    shown, met = "n/a", "n/a"
    if tagless and bare and bare.wrk.events_per_s:
        ratio = tagless.wrk.events_per_s / bare.wrk.events_per_s
        shown, met = f"**{ratio:.0%}**", "yes" if ratio >= goal else "**no**"
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
        f"| ≥ {goal:.0%} | {met} |"
    )


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
        ("Tagless peak RSS MiB", f"{e2e.peak_rss_mb:.0f}"),
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
        f"- {settings.rounds} rounds; each round measures every row once, bare and Tagless one "
        "after the other, so slow drift of the VM hits both. The tables give each row's median "
        "round (its other columns are that round's; errors are summed, peak RSS and other CPU "
        "are the highest of the rounds) and the ratio of the medians; *ratio per round* pairs "
        "each Tagless run with the bare run of the same round.",
        "- Every ingest row starts a fresh server with a fresh database (Tagless: a fresh outbox). "
        "Every request carries fresh messageIds (post.lua fills a per-run, per-thread counter "
        "into every event), so Tagless's de-duplication never drops a bench event.",
        "- Both servers get the same wrk command, the same post.lua and the same body templates "
        f"({len(payloads.single_template())} B per event template, "
        f"{len(payloads.batch_template())} B per batch template, before the ids are filled in), "
        "and the same `Authorization: Basic base64(bench-key:)` header.",
        "- bare = bench/bare_server.py: aiohttp + orjson + uvloop, sqlite3 WAL, synchronous=FULL, "
        "one writer thread, natural group commit (N=0, up to 1000 rows), no secondary index; it "
        "answers 200 after the commit (the design of the reference ceiling).",
        "- Tagless runs with `max_pending_events` raised to 100,000,000, so that the backlog cap "
        "(200,000 undelivered events by default) does not refuse a run's events while the "
        "destination is down or slower than ingest: the figures measure ingest, not backpressure.",
        f"- Tagless is measured twice per figure, its store having identity stitching "
        f"{'on' if settings.stitching else 'off (`--stitching off`)'} (every bench event carries "
        "its customer's public IP and user agent, so none needs filling and none looks its "
        "person up, as for events sent with their customer's request) and one webhook "
        "destination: "
        "*destination down* (the sink answers 503 Retry-After 3600, the destination pauses after "
        "its first batch, so ingest runs alone like the bare server; every event is still routed "
        "to it and waits in the outbox) and *delivering* (the sink accepts, so delivery, and the "
        "sink process, share the 2 cores with ingest and wrk, as in production).",
        "- Server CPU % = user + system time of the server's process group during the measured "
        "run (100% = one core). Other CPU % = CPU of user processes that are not part of the "
        "bench (not the server, sink, wrk or run.py) during that run: unrelated work that "
        f"competed for the 2 cores; above {OTHER_LOAD_LIMIT_PCT:.0f}% the ratio is flagged. "
        "non-2xx = responses with HTTP status ≥ 400 as counted by wrk. Peak RSS = the server "
        "process's high-water resident memory (VmHWM) over its warm-up and measured run.",
        f"- End to end: a fresh Tagless and outbox, no warm-up; wrk posts batches for "
        f"{settings.duration} s; events/s = acknowledged events / (sink's receipt time of the last "
        "delivery that brought a new event id − time just before wrk started). Events committed "
        "but not acknowledged when wrk stopped may also arrive; they are in the sink counts.",
    ]
    for figure in FIGURES:
        for _, label in TAGLESS_KINDS.values():
            received = [
                r.sink_events for r in report.runs(label, figure) if r.sink_events is not None
            ]
            if received:
                notes.append(
                    f"- During each {label} {figure} run (warm-up + measured), the sink "
                    f"received {', '.join(f'{n:,}' for n in received)} events."
                )
    return notes
