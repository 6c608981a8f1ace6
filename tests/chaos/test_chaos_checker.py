"""The checker itself: each broken invariant is caught, named per destination, and printed with
the slice of history around the offending event; faults that allow duplicates excuse them."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from router.outbox.schema import prepare
from tests.chaos.history import Delivery, Fault, History, check, unanswered_tries
from tests.process.harness import ACKED, FAILED, INDETERMINATE, Sent


def history(*deliveries: Delivery, faults: tuple[Fault, ...] = ()) -> History:
    h = History(began=0.0)
    h.submitted(Sent(("a", "b"), 1.0, 1.1, ACKED, 200))
    h.submitted(Sent(("c",), 2.0, 7.0, INDETERMINATE, None, "ServerDisconnectedError"))
    h.submitted(Sent(("d",), 3.0, 3.1, FAILED, 503))
    h.deliveries.extend(deliveries)
    h.faults.extend(faults)
    return h


def test_a_clean_history_passes_and_reports_its_figures() -> None:
    """Acked events delivered once each, an indeterminate one delivered: no problem."""
    verdict = check(
        history(Delivery("hook", ("a", "b"), 200, 2.0), Delivery("hook", ("c",), 200, 8.0)),
        routed=["hook"],
    )
    verdict.assert_ok()
    assert verdict.figures["hook"].delivered == 3
    assert "hook: 2 requests (200: 2); 3 events delivered, 0 duplicates" in verdict.summary()


def test_an_acked_event_never_delivered_is_caught_with_its_slice() -> None:
    """A 5xx answer is not a delivery: the acked event counts as missing, and the slice shows
    when it was sent and what the platform answered."""
    verdict = check(
        history(Delivery("hook", ("a",), 200, 2.0), Delivery("hook", ("b",), 500, 2.5)),
        routed=["hook"],
    )
    with pytest.raises(AssertionError) as failure:
        verdict.assert_ok()
    text = str(failure.value)
    assert "hook: 1 acknowledged events never delivered" in text
    assert "event b:" in text
    assert "t=   1.000s sent in a batch of 2: acked (status 200)" in text
    assert "t=   2.500s hook got it in a batch of 1, answered 500" in text


def test_a_refused_event_delivered_is_a_phantom() -> None:
    """An event whose request was refused (503) stored nothing: delivering it breaks
    delivered ⊆ sent."""
    verdict = check(history(Delivery("hook", ("a", "b", "d"), 200, 2.0)), routed=["hook"])
    assert verdict.problems and "1 events delivered that were never sent" in verdict.problems[0]
    assert "event d:" in verdict.problems[0]


def test_a_duplicate_needs_a_fault_that_allows_it_on_its_destination() -> None:
    """A second delivery with no fault in between is a bug; a kill between them excuses it on
    every destination; a cut connection only on its own destination; a 503 outage never."""
    twice = (Delivery("hook", ("a", "b"), 200, 2.0), Delivery("hook", ("a",), 200, 5.0))
    assert check(history(*twice), routed=["hook"]).problems

    kill = Fault("kill -9", 3.0, 3.0, None, duplicates=True)
    verdict = check(history(*twice, faults=(kill,)), routed=["hook"])
    verdict.assert_ok()
    figures = verdict.figures["hook"]
    assert (figures.duplicates, figures.allowed_duplicates) == (1, 1)

    elsewhere = Fault("reset", 2.5, 4.0, "other", duplicates=True)
    assert check(history(*twice, faults=(elsewhere,)), routed=["hook"]).problems
    outage = Fault("503", 2.5, 4.0, "hook", duplicates=False)
    assert check(history(*twice, faults=(outage,)), routed=["hook"]).problems


def test_a_try_tagless_timed_out_excuses_a_duplicate_and_a_refused_connection_does_not(
    tmp_path: Path,
) -> None:
    """The attempts log's tries that got no answer (a timeout, a connection broken once the
    request was out) may have reached the platform: they explain the duplicate that follows on
    their destination, as an injected cut does; a connection never made explains nothing."""
    path = tmp_path / "outbox.db"
    wall = time.time() - time.monotonic()  # the history's monotonic 0, in wall time
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        prepare(db, path=path, now=0.0)
        db.executemany(
            "INSERT INTO attempts (store, destination, at, seq_lo, seq_hi, status, latency_ms,"
            " delivered, retrying, dead, skipped, reason) VALUES"
            " ('shop', ?, ?, 1, 2, NULL, 3000, 0, 2, 0, 0, ?)",
            [
                ("hook", wall + 1.5, "timeout"),
                ("other", wall + 1.5, "network"),
                ("hook", wall + 1.5, "connect_failed"),
            ],
        )
    faults = unanswered_tries(path)
    assert sorted((f.name, f.destination) for f in faults) == [
        ("network seen by Tagless", "other"),
        ("timeout seen by Tagless", "hook"),
    ]
    assert [round(f.started, 1) for f in faults] == [1.5, 1.5]
    twice = (Delivery("hook", ("a", "b"), 200, 2.0), Delivery("hook", ("a",), 200, 5.0))
    verdict = check(history(*twice, faults=tuple(faults)), routed=["hook"])
    verdict.assert_ok()
    other = tuple(f for f in faults if f.destination == "other")
    assert check(history(*twice, faults=other), routed=["hook"]).problems


def test_withheld_events_are_not_expected_and_must_not_arrive() -> None:
    """A poison event is withheld from its destination: missing is fine, arriving is not."""
    fine = check(
        history(Delivery("hook", ("a",), 200, 2.0)), routed=["hook"], withheld={"hook": {"b"}}
    )
    fine.assert_ok()
    leaked = check(
        history(Delivery("hook", ("a", "b"), 200, 2.0)), routed=["hook"], withheld={"hook": {"b"}}
    )
    assert any("must not get" in p for p in leaked.problems)
