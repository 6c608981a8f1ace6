"""The history of a fault run (every event sent, every answer, every delivery seen, every fault)
and the one checker every scenario ends with.

The checker states the promise once: every acknowledged event reaches every destination it is
routed to (acknowledged ⊆ delivered), nothing reaches a destination that was not sent
(delivered ⊆ sent), and an event reaches a destination twice only across a fault that allows
it (a kill, a cut connection, a stop past its grace), counted per destination. A failure
prints the slice of the history around the events that broke it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from router import codec
from tests.process.harness import (
    ACKED,
    FAILED,
    INDETERMINATE,
    Sent,
    integrity_check,
    stored_bodies,
)

#: How far around an offending event the printed slice reaches (seconds).
SLICE_SECS = 2.0
#: Offending events printed per broken invariant.
SLICE_EVENTS = 4
#: A request Tagless sent just before a kill can reach the platform just after it.
IN_FLIGHT_SECS = 1.0
#: The attempts log's reasons for a try that got no answer though the platform may have taken
#: it: Tagless gave up waiting, or the connection broke once the request was out.
UNANSWERED: Final = ("timeout", "network")


@dataclass(frozen=True)
class Delivery:
    """One request a fake platform saw: which events, what it answered, when (monotonic)."""

    destination: str
    ids: tuple[str, ...]
    status: int
    at: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Fault:
    """A fault the scenario injected: ``destination`` None means the whole process.

    ``duplicates`` says whether it may make an event arrive twice: a kill or a cut answer may
    (the platform took the batch, Tagless never heard), a 5xx or a 429 may not.
    """

    name: str
    started: float
    ended: float | None = None
    destination: str | None = None
    duplicates: bool = False

    def overlaps(self, start: float, end: float) -> bool:
        """Whether the fault was on at some moment of [start, end] (not ended: still on)."""
        return self.started <= end and (math.inf if self.ended is None else self.ended) >= start


@dataclass
class History:
    """Everything a run did, in monotonic time from ``began``."""

    began: float = field(default_factory=time.monotonic)
    sent: list[Sent] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def submitted(self, item: Sent) -> None:
        self.sent.append(item)

    def delivered(self, item: Delivery) -> None:
        self.deliveries.append(item)

    def fault(
        self, name: str, *, destination: str | None = None, duplicates: bool = False
    ) -> Fault:
        """Start a fault now; set its ``ended`` (or call :meth:`end`) when it is over."""
        found = Fault(name, time.monotonic(), None, destination, duplicates)
        self.faults.append(found)
        return found

    def instant(self, name: str, *, duplicates: bool = True) -> Fault:
        """A fault of no duration (a kill -9)."""
        found = self.fault(name, duplicates=duplicates)
        found.ended = found.started
        return found

    @staticmethod
    def end(fault: Fault) -> None:
        fault.ended = time.monotonic()

    def ids(self, outcome: str) -> set[str]:
        return {i for s in self.sent if s.outcome == outcome for i in s.ids}

    @property
    def acked(self) -> set[str]:
        return self.ids(ACKED)

    @property
    def sendable(self) -> set[str]:
        """Ids that may legitimately be stored: acknowledged, or sent with no answer."""
        return self.ids(ACKED) | self.ids(INDETERMINATE)

    def destinations(self) -> list[str]:
        return sorted({d.destination for d in self.deliveries})

    def delivered_counts(self, destination: str) -> Counter[str]:
        return Counter(
            i for d in self.deliveries if d.destination == destination and d.ok for i in d.ids
        )

    # -- the slice printed with a failure ----------------------------------------------------

    def slice(self, ids: Iterable[str]) -> str:
        """Every submission and delivery holding one of ``ids``, and the faults around them."""
        wanted = sorted(ids)[:SLICE_EVENTS]
        lines: list[str] = []
        for event_id in wanted:
            lines.append(f"  event {event_id}:")
            times: list[float] = []
            for s in self.sent:
                if event_id in s.ids:
                    times.append(s.started)
                    lines.append(
                        f"    {self._t(s.started)} sent in a batch of {len(s.ids)}:"
                        f" {s.outcome} (status {s.status}{', ' + s.error if s.error else ''})"
                        f" after {s.finished - s.started:.3f}s"
                    )
            for d in self.deliveries:
                if event_id in d.ids:
                    times.append(d.at)
                    lines.append(
                        f"    {self._t(d.at)} {d.destination} got it in a batch of"
                        f" {len(d.ids)}, answered {d.status}"
                    )
            if not times:
                lines.append("    (never sent, never delivered)")
                continue
            low, high = min(times) - SLICE_SECS, max(times) + SLICE_SECS
            for f in self.faults:
                if f.overlaps(low, high):
                    lines.append(f"    {self._fault_line(f)}")
        return "\n".join(lines)

    def timeline(self) -> str:
        """The faults of the run, one line each."""
        return "\n".join(f"  {self._fault_line(f)}" for f in self.faults) or "  (no faults)"

    def _t(self, at: float) -> str:
        return f"t={at - self.began:8.3f}s"

    def _fault_line(self, f: Fault) -> str:
        where = f.destination or "process"
        span = "" if f.ended == f.started else f" until {self._t(f.ended or time.monotonic())}"
        return f"{self._t(f.started)} fault {f.name} ({where}){span}"


@dataclass
class Figures:
    """What one destination saw."""

    requests: int
    statuses: Counter[int]
    delivered: int
    duplicates: int
    allowed_duplicates: int
    dedups: bool

    def line(self, name: str) -> str:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        after = ", 0 after its de-duplication" if self.dedups and self.duplicates else ""
        rate = self.duplicates / self.delivered if self.delivered else 0.0
        return (
            f"  {name}: {self.requests} requests ({statuses}); {self.delivered} events"
            f" delivered, {self.duplicates} duplicates ({rate:.2%}){after}"
        )


@dataclass
class Verdict:
    """The checker's answer: figures per destination and the broken invariants, if any."""

    history: History
    figures: dict[str, Figures]
    problems: list[str]
    #: Tries the attempts log says got no answer (see :func:`unanswered_tries`).
    unanswered: int = 0

    def summary(self) -> str:
        h = self.history
        counts = Counter(s.outcome for s in h.sent)
        head = (
            f"requests: {counts[ACKED]} acked, {counts[FAILED]} failed, {counts[INDETERMINATE]}"
            f" indeterminate; events: {len(h.acked)} acked, {len(h.ids(INDETERMINATE))}"
            f" indeterminate, {len(h.ids(FAILED) - h.sendable)} refused;"
            f" {len(h.faults)} faults; {self.unanswered} tries Tagless saw unanswered"
        )
        return "\n".join([head, *(f.line(n) for n, f in sorted(self.figures.items()))])

    def assert_ok(self) -> None:
        if self.problems:
            raise AssertionError(
                "\n".join(
                    [
                        "the history breaks the promise:",
                        *self.problems,
                        "figures:",
                        self.summary(),
                        "faults:",
                        self.history.timeline(),
                    ]
                )
            )


def check(
    history: History,
    *,
    routed: Iterable[str],
    withheld: Mapping[str, set[str]] | None = None,
    dedups: Iterable[str] = (),
    outbox: Path | None = None,
) -> Verdict:
    """Check the history against the promise, for each destination of ``routed``.

    ``withheld``: per destination, acknowledged ids it must not be expected to get (a poison
    event dead-lettered, an event too old for the platform); they must not arrive either.
    ``dedups``: destinations that de-duplicate on the event id (their duplicates are reported,
    and cost nothing there). ``outbox``: the outbox file, checked too (integrity, every
    acknowledged event stored once and whole, nothing stored that was not sent).
    """
    withheld = withheld or {}
    dedupers = set(dedups)
    faults = [*history.faults, *(unanswered_tries(outbox) if outbox is not None else ())]
    acked, sendable = history.acked, history.sendable
    figures: dict[str, Figures] = {}
    problems: list[str] = []
    for name in routed:
        mine = [d for d in history.deliveries if d.destination == name]
        counts = history.delivered_counts(name)
        kept_back = withheld.get(name, set())
        missing = acked - kept_back - set(counts)
        if missing:
            problems.append(
                f"{name}: {len(missing)} acknowledged events never delivered"
                f"\n{history.slice(missing)}"
            )
        phantoms = set(counts) - sendable
        if phantoms:
            problems.append(
                f"{name}: {len(phantoms)} events delivered that were never sent"
                f"\n{history.slice(phantoms)}"
            )
        leaked = set(counts) & kept_back
        if leaked:
            problems.append(
                f"{name}: {len(leaked)} events delivered that it must not get"
                f"\n{history.slice(leaked)}"
            )
        duplicates, allowed, unexplained = _duplicates(faults, name, mine)
        if unexplained:
            problems.append(
                f"{name}: {len(unexplained)} events delivered twice with no fault in between"
                f"\n{history.slice(unexplained)}"
            )
        figures[name] = Figures(
            requests=len(mine),
            statuses=Counter(d.status for d in mine),
            delivered=len(counts),
            duplicates=duplicates,
            allowed_duplicates=allowed,
            dedups=name in dedupers,
        )
    if outbox is not None:
        problems.extend(_outbox_problems(history, outbox))
    return Verdict(history, figures, problems, len(faults) - len(history.faults))


def _outbox_problems(history: History, path: Path) -> list[str]:
    verdict = integrity_check(path)
    if verdict != "ok":
        return [f"outbox: integrity_check says {verdict}"]
    problems = []
    rows = stored_bodies(path)
    stored = Counter(event_id for event_id, _ in rows)
    lost = history.acked - set(stored)
    if lost:
        problems.append(
            f"outbox: {len(lost)} acknowledged events not stored\n{history.slice(lost)}"
        )
    doubled = {i for i, n in stored.items() if n > 1}
    if doubled:
        problems.append(f"outbox: {len(doubled)} events stored twice\n{history.slice(doubled)}")
    unsent = set(stored) - history.sendable
    if unsent:
        problems.append(f"outbox: {len(unsent)} events stored never sent\n{history.slice(unsent)}")
    broken = [i for i, body in rows if codec.decode(body).event_id != i]
    if broken:
        problems.append(f"outbox: {len(broken)} rows do not decode whole\n{history.slice(broken)}")
    return problems


def unanswered_tries(path: Path) -> list[Fault]:
    """Tagless's own record (the attempts log) of tries that got no answer though the platform
    may have taken them, as faults that explain a duplicate, as a cut answer does: a machine
    under load can time a request out with no fault injected, and at-least-once delivery then
    sends it again. Their wall times are mapped to the history's monotonic clock."""
    offset = time.time() - time.monotonic()
    marks = ",".join("?" * len(UNANSWERED))
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT reason, destination, at, coalesce(latency_ms, 0) FROM attempts"  # noqa: S608 - placeholders only
            f" WHERE status IS NULL AND reason IN ({marks})",
            UNANSWERED,
        ).fetchall()
    return [
        Fault(f"{reason} seen by Tagless", at - offset, at - offset + ms / 1000, dest, True)
        for reason, dest, at, ms in rows
    ]


def _duplicates(
    faults: Iterable[Fault], name: str, mine: list[Delivery]
) -> tuple[int, int, set[str]]:
    """Extra 2xx deliveries, how many a fault explains, and the ids none explains."""
    arrivals: dict[str, list[float]] = defaultdict(list)
    for d in mine:
        if d.ok:
            for i in d.ids:
                arrivals[i].append(d.at)
    faults = [f for f in faults if f.duplicates and f.destination in (None, name)]
    extra = allowed = 0
    unexplained: set[str] = set()
    for event_id, times in arrivals.items():
        times.sort()
        for before, after in itertools.pairwise(times):
            extra += 1
            if any(f.overlaps(before - IN_FLIGHT_SECS, after) for f in faults):
                allowed += 1
            else:
                unexplained.add(event_id)
    return extra, allowed, unexplained
