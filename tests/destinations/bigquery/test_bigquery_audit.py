"""The audit table's sink, on fake time against the fake BigQuery: batching, insertIds, retries
with backoff, the memory cap and its counter, the flush at close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fake_bigquery import AUDIT_TABLE, FakeBigQuery, bigquery_config
from structlog.testing import capture_logs

from destinations.bigquery import BigQueryDestination
from destinations.bigquery.audit import AuditSink, audit_row
from router.attempts import Attempt
from router.clock import FakeClock
from router.http import HttpClient
from router.testing.fake_platform import Answer, FakePlatform, Recorded
from router.testing.google_token import LocalTokenServer
from router.testing.server import RunningTagless, write_config_dir

Factory = Callable[..., AuditSink]


def attempt(event_id: str, n: int = 1, **changes: Any) -> Attempt:
    """A webhook try of ``event_id`` that was delivered in 12.5 ms."""
    fields: dict[str, Any] = {
        "store": "shop",
        "destination": "hook",
        "destination_type": "webhook",
        "event_id": event_id,
        "attempt": n,
        "outcome": "delivered",
        "status": 200,
        "reason": "ok",
        "latency_ms": 12.5,
        "attempted_at": 1_800_000_000.25,
    }
    return Attempt(**(fields | changes))


async def until(check: Callable[[], bool]) -> None:
    """Let real I/O happen (fake time standing still) until ``check`` holds (10 s at most)."""
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def idle() -> None:
    """Give the sink's task time to do anything it would do now."""
    await asyncio.sleep(0.05)


async def advance(clock: FakeClock, seconds: float) -> None:
    """Move fake time once the sink's task waits on it."""
    await idle()
    clock.advance(seconds)


@pytest.fixture
async def sinks() -> AsyncIterator[list[AuditSink]]:
    made: list[AuditSink] = []
    yield made
    for sink in made:
        await sink.close(0.0)


@pytest.fixture
def make_sink(
    bigquery: FakeBigQuery,
    tokens: LocalTokenServer,
    key_file: Path,
    http: HttpClient,
    clock: FakeClock,
    sinks: list[AuditSink],
) -> Factory:
    """The audit sink of a bigquery destination with ``audit_table``, on the fake clock."""

    def build(*, start: bool = True, **settings: Any) -> AuditSink:
        settings = {"audit_table": AUDIT_TABLE, "audit_flush_secs": 5.0} | settings
        config = bigquery_config(bigquery.platform.url, tokens.url, key_file, **settings)
        sink = BigQueryDestination(config, http).attempt_sink(clock)
        assert sink is not None
        if start:
            sink.start()
        sinks.append(sink)
        return sink

    return build


def ids(request: Recorded) -> list[str]:
    return [row["insertId"] for row in request.json()["rows"]]


async def test_rows_wait_for_the_interval_then_go_in_one_request(
    make_sink: Factory, bigquery: FakeBigQuery, clock: FakeClock
) -> None:
    """Three attempts are not sent at once, but together when audit_flush_secs has passed."""
    sink = make_sink()
    for event_id in ("e-1", "e-2", "e-3"):
        sink.observe(attempt(event_id))
    await idle()
    assert bigquery.audit_inserts == []
    await advance(clock, 5.0)
    await until(lambda: len(bigquery.audit_rows) == 3)
    [request] = bigquery.audit_inserts
    assert [row["event_id"] for row in bigquery.audit_rows] == ["e-1", "e-2", "e-3"]
    assert bigquery.audit_rows[0] == {
        "store": "shop",
        "destination": "hook",
        "destination_type": "webhook",
        "event_id": "e-1",
        "attempt": 1,
        "outcome": "delivered",
        "status": 200,
        "reason": "ok",
        "latency_ms": 12.5,
        "attempted_at": "2027-01-15T08:00:00.250000Z",
    }
    assert ids(request)[0] == "hook:e-1:1:1800000000250000"
    # the fake has the rows once the request arrives; the sink counts them once it has the answer
    await until(lambda: sink.counters()["audit_rows_inserted"] == 3)


async def test_a_full_batch_goes_out_without_waiting_for_the_interval(
    make_sink: Factory, bigquery: FakeBigQuery
) -> None:
    """max_batch_size rows waiting send them at once; no request carries more."""
    sink = make_sink(max_batch_size=2)
    sink.observe(attempt("e-1"))
    await idle()
    assert bigquery.audit_inserts == []
    for event_id in ("e-2", "e-3"):
        sink.observe(attempt(event_id))
    await until(lambda: len(bigquery.audit_rows) == 3)
    assert [len(ids(request)) for request in bigquery.audit_inserts] == [2, 1]


async def test_a_failed_insert_is_retried_after_a_doubling_backoff_with_the_same_insert_ids(
    make_sink: Factory, bigquery: FakeBigQuery, clock: FakeClock
) -> None:
    """503, 503, then 200: tries 1 s and then 2 s apart, each with the same insertIds; the rows
    go in once."""
    bigquery.platform.script(Answer(503), Answer(503))
    sink = make_sink()
    sink.observe(attempt("e-1"))
    sink.observe(attempt("e-2"))
    await advance(clock, 5.0)
    await until(lambda: len(bigquery.audit_inserts) == 1)
    await advance(clock, 0.75)
    await idle()
    assert len(bigquery.audit_inserts) == 1, "tried again inside the backoff"
    await advance(clock, 0.25)
    await until(lambda: len(bigquery.audit_inserts) == 2)
    await advance(clock, 1.75)
    await idle()
    assert len(bigquery.audit_inserts) == 2, "the backoff did not double"
    await advance(clock, 0.25)
    await until(lambda: len(bigquery.audit_rows) == 2)
    first, second, third = bigquery.audit_inserts
    assert ids(first) == ids(second) == ids(third)
    # the fake has the rows once the request arrives; the sink counts them once it has the answer
    await until(lambda: sink.counters()["audit_rows_inserted"] == 2)


async def test_an_insert_whose_answer_was_lost_does_not_duplicate_rows_when_resent(
    make_sink: Factory, bigquery: FakeBigQuery, clock: FakeClock
) -> None:
    """BigQuery took the rows but the answer was a 503: the re-sent insert carries the same
    insertIds, so BigQuery drops the copies."""
    answers = iter([True])

    def lose_first_answer(seen: Recorded) -> Answer:
        answer = bigquery(seen)
        return Answer(503) if next(answers, False) else answer

    bigquery.platform.responder = lose_first_answer
    sink = make_sink()
    sink.observe(attempt("e-1"))
    await advance(clock, 5.0)
    await until(lambda: len(bigquery.audit_inserts) == 1)
    await advance(clock, 1.0)
    await until(lambda: len(bigquery.audit_inserts) == 2)
    await idle()
    assert [row["event_id"] for row in bigquery.audit_rows] == ["e-1"]


def test_two_tries_with_the_same_attempt_number_get_their_own_insert_ids() -> None:
    """Tries that paused the destination spend no attempt, so two of them share the attempt
    number; the time each went out keeps BigQuery from dropping the second as a copy."""
    first = audit_row(attempt("e-1", 3, outcome="retry", status=429, attempted_at=100.0))
    second = audit_row(attempt("e-1", 3, outcome="retry", status=429, attempted_at=101.5))
    assert first["insertId"] == "hook:e-1:3:100000000"
    assert second["insertId"] == "hook:e-1:3:101500000"


async def test_invalid_rows_are_counted_as_rejected_and_not_sent_again(
    make_sink: Factory, bigquery: FakeBigQuery, clock: FakeClock
) -> None:
    """A row BigQuery calls invalid is counted and logged; the others of the request go in."""
    bigquery.row_errors["e-2"] = [{"reason": "invalid", "location": "status", "message": "bad"}]
    with capture_logs() as logs:
        sink = make_sink()
        sink.observe(attempt("e-1"))
        sink.observe(attempt("e-2"))
        await advance(clock, 5.0)
        await until(lambda: sink.counters()["audit_rows_rejected"] == 1)
    await advance(clock, 60.0)
    await idle()
    assert len(bigquery.audit_inserts) == 1
    assert sink.counters()["audit_rows_inserted"] == 1
    [warning] = [log for log in logs if log["event"] == "audit_rows_rejected"]
    assert warning["reason"] == "invalid_row" and warning["rows"] == 1


async def test_rows_beyond_the_cap_are_counted_and_logged_once_per_interval(
    make_sink: Factory, bigquery: FakeBigQuery, clock: FakeClock
) -> None:
    """While inserts fail, at most audit_max_buffered_rows wait; each further row is counted
    in audit_rows_dropped, and one warning per interval says how many."""
    bigquery.platform.default = Answer(503)
    bigquery.platform.responder = None
    with capture_logs() as logs:
        sink = make_sink(audit_max_buffered_rows=3)
        for n in range(5):
            sink.observe(attempt(f"e-{n}"))
        assert (sink.buffered, sink.counters()["audit_rows_dropped"]) == (3, 2)
        await advance(clock, 5.0)
        await until(lambda: len(bigquery.audit_inserts) == 1)
        for n in range(5, 9):
            sink.observe(attempt(f"e-{n}"))
        await advance(clock, 1.0)
        await until(lambda: len(bigquery.audit_inserts) == 2)
        await advance(clock, 4.0)
        await idle()
    assert sink.counters()["audit_rows_dropped"] == 6
    dropped = [log for log in logs if log["event"] == "audit_rows_dropped"]
    assert [(log["rows"], log["log_level"]) for log in dropped] == [(2, "warning"), (4, "warning")]
    bigquery.platform.responder = bigquery
    await advance(clock, 60.0)
    await until(lambda: len(bigquery.audit_rows) == 3)
    assert [row["event_id"] for row in bigquery.audit_rows] == ["e-0", "e-1", "e-2"]


async def test_close_inserts_what_is_buffered(make_sink: Factory, bigquery: FakeBigQuery) -> None:
    """Stopping writes the rows still waiting for the interval."""
    sink = make_sink()
    sink.observe(attempt("e-1"))
    sink.observe(attempt("e-2"))
    await sink.close(5.0)
    assert [row["event_id"] for row in bigquery.audit_rows] == ["e-1", "e-2"]
    assert sink.counters()["audit_rows_unsent"] == 0


async def test_rows_that_cannot_be_inserted_at_close_are_counted_and_logged(
    make_sink: Factory, bigquery: FakeBigQuery
) -> None:
    """BigQuery failing at shutdown: the rows are counted as unsent, with a warning."""
    bigquery.platform.default = Answer(503)
    bigquery.platform.responder = None
    with capture_logs() as logs:
        sink = make_sink()
        sink.observe(attempt("e-1"))
        sink.observe(attempt("e-2"))
        await sink.close(5.0)
    assert sink.counters()["audit_rows_unsent"] == 2
    [warning] = [log for log in logs if log["event"] == "audit_rows_unsent"]
    assert warning["rows"] == 2 and warning["log_level"] == "warning"


STORE = """\
store: shop
write_keys: [shop-key]
destinations:
  - {{id: hook, type: webhook, url: "{hook}/hook", max_batch_size: 1}}
  - id: warehouse
    type: bigquery
    project: tagless-test
    dataset: tagless
    table: events
    audit_table: deliveries
    audit_flush_secs: 600
    audit_max_buffered_rows: 1
    credentials: {{service_account_file: "{key}"}}
    endpoint: "{endpoint}"
    token_endpoint: "{tokens}"
"""


DROPPED_TWO = (
    'tagless_destination_events_total{counter="audit_rows_dropped",'
    'destination="warehouse",store="shop"} 2.0'
)


async def three_delivered(
    running: RunningTagless, platform: FakePlatform, bigquery: FakeBigQuery
) -> None:
    """Post three events; wait until the webhook and the warehouse both have them."""
    batch = {"batch": [{"type": "track", "event": "Signed Up", "messageId": f"m-{n}",
                        "userId": "u"} for n in range(3)]}  # fmt: skip
    assert (await running.post("/v1/batch", batch, key="shop-key"))[0] == 200
    await until(lambda: len(platform.delivered_events()) == 3)
    await until(lambda: len(bigquery.rows) == 3)


async def test_dropped_rows_show_in_metrics_and_the_buffered_one_is_written_at_stop(
    tmp_path: Path,
    bigquery: FakeBigQuery,
    tokens: LocalTokenServer,
    key_file: Path,
    platform: FakePlatform,
) -> None:
    """A running Tagless with a one-row cap: of three webhook attempts, two are counted in
    /metrics as dropped; Tagless.stop writes the one it kept."""
    text = STORE.format(hook=platform.url, key=key_file, endpoint=bigquery.platform.url,
                        tokens=tokens.url)  # fmt: skip
    running = await RunningTagless(write_config_dir(tmp_path, text)).start()
    try:
        await three_delivered(running, platform, bigquery)
        # attempts reach the audit sink after the outbox settled them: wait for the count
        await until(lambda: DROPPED_TWO in running.app.metrics.exposition().decode())
    finally:
        await running.stop()
    [row] = bigquery.audit_rows
    assert (row["destination"], row["outcome"], row["status"]) == ("hook", "delivered", 200)


async def test_each_delivery_process_audits_the_attempts_of_its_own_lanes(
    tmp_path: Path,
    bigquery: FakeBigQuery,
    tokens: LocalTokenServer,
    key_file: Path,
    platform: FakePlatform,
) -> None:
    """With ``server.delivery_processes: 2`` the webhook's lane and the warehouse's run in two
    processes: the webhook's process runs the audit sink too, so its attempts reach the table."""
    text = STORE.format(hook=platform.url, key=key_file, endpoint=bigquery.platform.url,
                        tokens=tokens.url)  # fmt: skip
    text = text.replace("audit_flush_secs: 600", "audit_flush_secs: 0.2")
    text = text.replace("audit_max_buffered_rows: 1", "audit_max_buffered_rows: 100")
    config = write_config_dir(tmp_path, text)
    tagless_yaml = config / "tagless.yaml"
    tagless_yaml.write_text(
        tagless_yaml.read_text().replace("port: 0}", "port: 0, delivery_processes: 2}", 1)
    )
    running = await RunningTagless(config).start()
    try:
        assert running.app.delivery_pool is not None and running.app.dispatchers == []
        await three_delivered(running, platform, bigquery)
        await until(lambda: len(bigquery.audit_rows) == 3)
    finally:
        await running.stop()
    rows = [(r["destination"], r["outcome"], r["status"]) for r in bigquery.audit_rows]
    assert rows == [("hook", "delivered", 200)] * 3
