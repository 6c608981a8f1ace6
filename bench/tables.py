"""The report's summary, latency, end-to-end and backlog tables (report.py renders the rest)."""

from __future__ import annotations

from collections.abc import Iterable

from common import BATCH_SIZE, FIGURES, GOALS, MAIN_KIND, OTHER_LOAD_LIMIT_PCT, Settings
from common import TAGLESS_KINDS as KINDS
from load import E2E, Report, Result

#: The issue's goals that are not ratios.
HALF_P99_GOAL_MS = 20.0
DELIVERY_GOAL = 5_000.0
DRAIN_GOAL = 20_000.0
RSS_FLAT = 0.10
MAIN = KINDS[MAIN_KIND][1]
FILE = KINDS["tagless-file"][1]


def other_load_seen(report: Report) -> bool:
    """Whether unrelated processes competed for the CPU during any measured run."""
    loads = [r.other_cpu_pct for r in _all_results(report)]
    if report.e2e is not None:
        loads.append(report.e2e.other_cpu_pct)
    return any(load > OTHER_LOAD_LIMIT_PCT for load in loads)


def _all_results(report: Report) -> Iterable[Result]:
    yield from report.results
    yield from report.half
    yield from (g.result for g in report.growth)


def _ratio(tagless: float | None, bare: float | None) -> str:
    return f"{tagless / bare:.0%}" if tagless is not None and bare else "n/a"


def _num(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else "yes" if ok else "**no**"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


# --- the summary ------------------------------------------------------------------------------


def render_summary(report: Report, settings: Settings) -> list[str]:
    """One line per figure the issue asks for, Tagless delivering to 5 platforms against bare."""
    lines = [
        f"## Summary: {MAIN} against the bare reference",
        "",
        "| Figure | Tagless | bare | Tagless / bare | goal | met |",
        "|---|--:|--:|--:|---|---|",
    ]
    lines += _ingest_summary(report)
    lines += _latency_summary(report)
    lines += _delivery_summary(report)
    lines += _growth_summary(report, settings)
    return lines


def _ingest_summary(report: Report) -> list[str]:
    lines = []
    for figure, goal in GOALS.items():
        t, b = report.median(MAIN, figure), report.median("bare", figure)
        tv, bv = (t.wrk.events_per_s if t else None), (b.wrk.events_per_s if b else None)
        ok = None if tv is None or not bv else tv / bv >= goal
        name = f"durable ingest, {FIGURES[figure][2]} (events/s)"
        lines.append(_row(name, _num(tv), _num(bv), _ratio(tv, bv), f"≥ {goal:.0%}", _met(ok)))
        tc, bc = (t.cpu_ms_per_1k if t else None), (b.cpu_ms_per_1k if b else None)
        lines.append(
            _row(
                f"CPU per 1,000 events, {figure} (ms)",
                _num(tc, digits=1),
                _num(bc, digits=1),
                _ratio(tc, bc),
                "–",
                "–",
            )
        )
        tr = max((x.peak_rss_mb for x in report.runs(MAIN, figure)), default=None)
        br = max((x.peak_rss_mb for x in report.runs("bare", figure)), default=None)
        name = f"peak RSS, {figure} (MiB)"
        lines.append(_row(name, _num(tr), _num(br), _ratio(tr, br), "–", "–"))
    f, b = report.median(FILE, "batch"), report.median("bare", "batch")
    fv, bv = (f.wrk.events_per_s if f else None), (b.wrk.events_per_s if b else None)
    lines.append(
        _row(
            f"durable ingest, batches, {FILE} (events/s)",
            _num(fv),
            _num(bv),
            _ratio(fv, bv),
            "reported (an earlier measurement: 56–58%)",
            "–",
        )
    )
    return lines


def _latency_summary(report: Report) -> list[str]:
    lines = []
    for figure in FIGURES:
        for where, t, b in (
            ("half of saturation", _half(report, MAIN, figure), _half(report, "bare", figure)),
            ("saturation", report.median(MAIN, figure), report.median("bare", figure)),
        ):
            half = where.startswith("half")
            ok = None if t is None or not half else t.wrk.p99_ms < HALF_P99_GOAL_MS
            lines.append(
                _row(
                    f"ack latency p50 / p99, {figure}, at {where} (ms)",
                    _latency(t),
                    _latency(b),
                    _ratio(t.wrk.p99_ms if t else None, b.wrk.p99_ms if b else None) + " (p99)",
                    f"p99 < {HALF_P99_GOAL_MS:.0f} ms" if half else "–",
                    _met(ok) if half else "–",
                )
            )
    return lines


def _half(report: Report, server: str, figure: str) -> Result | None:
    return report.half_median(server, figure)


def _latency(result: Result | None) -> str:
    return "n/a" if result is None else f"{result.wrk.p50_ms:.1f} / {result.wrk.p99_ms:.1f}"


def _delivery_summary(report: Report) -> list[str]:
    lines = []
    bare = report.median("bare", "batch")
    bv = bare.wrk.events_per_s if bare else None
    e2e = report.e2e
    for name, rate in (e2e.rates() if e2e else {}).items():
        ok = None if rate is None else rate >= DELIVERY_GOAL
        shown = _num(rate) if rate is not None else "incomplete"
        lines.append(
            _row(
                f"delivered end to end to {name} (events/s; bare: its batch ingest)",
                shown,
                _num(bv),
                _ratio(rate, bv),
                f"≥ {DELIVERY_GOAL:,.0f}",
                _met(ok),
            )
        )
    drain = report.drain
    if drain is not None:
        rate = drain.events_per_s
        lines.append(
            _row(
                f"drain of a {drain.events:,}-event backlog to a webhook (events/s; "
                f"{_num(drain.seconds, ' s', 1)})",
                _num(rate) if rate else "incomplete",
                _num(bv),
                _ratio(rate, bv),
                f"≥ {DRAIN_GOAL:,.0f}",
                _met(None if rate is None else rate >= DRAIN_GOAL),
            )
        )
    return lines


def _growth_summary(report: Report, settings: Settings) -> list[str]:
    lines = []
    tagless = {g.backlog: g for g in report.growth if g.server != "bare"}
    bare = {g.backlog: g for g in report.growth if g.server == "bare"}
    for backlog in (settings.small_backlog, settings.backlog):
        t, b = tagless.get(backlog), bare.get(backlog)
        tv = t.result.wrk.events_per_s if t else None
        bv = b.result.wrk.events_per_s if b else None
        lines.append(
            _row(
                f"batch ingest with {backlog:,} events waiting (events/s; p99 ms)",
                f"{_num(tv)}; {_num(t.result.wrk.p99_ms if t else None, digits=1)}",
                f"{_num(bv)}; {_num(b.result.wrk.p99_ms if b else None, digits=1)}",
                _ratio(tv, bv),
                "–",
                "–",
            )
        )
        tc = t.result.cpu_ms_per_1k if t else None
        bc = b.result.cpu_ms_per_1k if b else None
        lines.append(
            _row(
                f"RSS (MiB) and CPU per 1,000 events (ms) with {backlog:,} waiting",
                f"{_num(t.rss_mb if t else None)}; {_num(tc, digits=1)}",
                f"{_num(b.rss_mb if b else None)}; {_num(bc, digits=1)}",
                _ratio(tc, bc) + " (CPU)",
                "–",
                "–",
            )
        )
    small, large = tagless.get(settings.small_backlog), tagless.get(settings.backlog)
    if small and large and small.rss_mb:
        growth = large.rss_mb / small.rss_mb - 1
        lines.append(
            _row(
                f"Tagless RSS from {settings.small_backlog:,} to {settings.backlog:,} waiting",
                f"{growth:+.0%}",
                "–",
                "–",
                f"± {RSS_FLAT:.0%}",
                _met(abs(growth) <= RSS_FLAT),
            )
        )
    return lines


# --- latency, end to end, backlog ----------------------------------------------------------


def _section(title: str, intro: str, columns: str) -> list[str]:
    """A section's title, its paragraph and its table's head (``columns``: ``a | b | c``; the
    first left-aligned, the others right-aligned)."""
    count = len(columns.split(" | "))
    align = "|---|" + "|".join("--:" for _ in range(count - 1)) + "|"
    return [f"## {title}", "", intro, "", f"| {columns} |", align]


def render_latency(report: Report, settings: Settings) -> list[str]:
    lines = _section(
        "Acknowledgement latency at half of saturation",
        "Each row paces wrk at half of the requests/s the same server reached in the saturated "
        "runs above (the median round): post.lua's `delay()` gives each request a slot on a "
        f"fixed schedule, whatever the answers' latency, over {settings.connections} "
        "connections (a slot whose time has passed goes at once). wrk's latency counts from "
        "sending a request to its answer. Every round runs each row once, bare and Tagless one "
        "after the other; the summary takes each row's round with the median p99.",
        "Figure | Server | round | paced at req/s | reached req/s | p50 ms | p99 ms | "
        "server CPU % | other CPU %",
    )
    order = list(FIGURES)

    def place(r: Result) -> tuple[int, bool, int]:
        return order.index(r.figure), r.server != "bare", r.round

    for r in sorted(report.half, key=place):
        lines.append(
            _row(
                FIGURES[r.figure][2],
                r.server,
                str(r.round + 1),
                _num(r.offered_rps),
                _num(r.wrk.rps),
                f"{r.wrk.p50_ms:.2f}",
                f"{r.wrk.p99_ms:.2f}",
                f"{r.cpu_pct:.0f}",
                f"{r.other_cpu_pct:.0f}",
            )
        )
    return lines


def render_e2e(e2e: E2E, settings: Settings) -> list[str]:
    w = e2e.wrk
    lines = _section(
        f"End to end: Tagless → 5 platforms (batches of {BATCH_SIZE} posted for "
        f"{settings.duration} s)",
        f"{e2e.acked:,} events acknowledged ({w.events_per_s:,.0f} events/s while posting; "
        f"{w.status_errors} non-2xx, socket errors {w.errors_text()}); Tagless peak RSS "
        f"{e2e.peak_rss_mb:.0f} MiB, {e2e.cpu_ms_per_1k:.1f} ms CPU per 1,000 events (ingest "
        f"and delivery to 5), other CPU {e2e.other_cpu_pct:.0f}%"
        + ("" if e2e.complete else "; **incomplete**: timed out or Tagless exited")
        + ".",
        "Platform | **events/s** | first request → last delivery | requests | "
        "events received | distinct | duplicates | missing | refused requests",
    )
    for name, s in e2e.received.items():
        rate = e2e.rate(name)
        last = s.get("last_new_at")
        took = None if last is None else last - e2e.first_request_at
        lines.append(
            _row(
                name,
                f"**{_num(rate)}**" if rate else "**incomplete**",
                _num(took, " s", 2),
                f"{s['requests']:,}",
                f"{s['events']:,}",
                f"{s['distinct']:,}",
                f"{s['duplicates']:,}",
                f"{e2e.missing(name):,}",
                f"{s['rejected']:,}",
            )
        )
    return lines


def render_backlog(report: Report, settings: Settings) -> list[str]:
    lines = _section(
        "Cost growth and drain",
        "The bare server and Tagless (one webhook whose sink answers 503 Retry-After 1: an "
        "outage; the destination probes every 2 s and gives no event up) are filled with "
        f"batches to {settings.small_backlog:,} and then {settings.backlog:,} stored events; at "
        f"each point wrk posts batches for {settings.duration} s. Then the outage ends and the "
        "time until the sink holds every acknowledged event is the drain.",
        "Server | stored when the run began | events/s | p50 ms | p99 ms | "
        "CPU ms / 1k events | RSS MiB | peak RSS MiB | other CPU %",
    )
    for g in report.growth:
        r = g.result
        lines.append(
            _row(
                g.server,
                f"{g.waiting:,}",
                _num(r.wrk.events_per_s),
                f"{r.wrk.p50_ms:.2f}",
                f"{r.wrk.p99_ms:.2f}",
                f"{r.cpu_ms_per_1k:.1f}",
                _num(g.rss_mb),
                _num(r.peak_rss_mb),
                f"{r.other_cpu_pct:.0f}",
            )
        )
    d = report.drain
    if d is not None:
        lines += [
            "",
            f"Drain: {d.events:,} events in {_num(d.seconds, ' s', 1)} "
            f"(**{_num(d.events_per_s)} events/s**), {d.duplicates:,} duplicates at the sink, "
            f"Tagless peak RSS {d.peak_rss_mb:.0f} MiB"
            + ("" if d.complete else "; **incomplete**")
            + ".",
        ]
    return lines
