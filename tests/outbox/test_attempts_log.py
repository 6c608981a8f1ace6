"""The attempts log: every settled batch leaves rows in the same commit (status, latency, counts,
the platform's answer scrubbed), a schema-3 file gains the table, and the log stays bounded."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from dispatch_kit import NO_JITTER, Lanes, append, webhook_lane

from router import codec
from router.clock import FakeClock
from router.destination import DELIVERED, Outcome
from router.http import HttpClient
from router.outbox.attempts_log import MAX_ANSWER, PURGE_STEP
from router.outbox.base import NewEvent
from router.outbox.schema import SCHEMA_VERSION
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event
from router.testing.fake_platform import Answer, FakePlatform
from router.testing.server import RunningTagless, write_config_dir
from tests.outbox.conftest import Query

COLUMNS = (
    "at, seq_lo, seq_hi, seqs, status, latency_ms, delivered, retrying, dead, skipped, reason,"
    " answer, next_retry_at"
)


async def attempts(query: Query) -> list[dict[str, Any]]:
    rows = await query(f"SELECT {COLUMNS} FROM attempts ORDER BY id")  # noqa: S608 - constant
    names = [name.strip() for name in COLUMNS.split(",")]
    return [dict(zip(names, row, strict=True)) for row in rows]


async def eventually(check: Callable[[], Any], seconds: float = 30.0) -> None:
    """Wait on a condition (sync or async) with a generous limit (the machine may be busy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not (await found if inspect.isawaitable(found := check()) else found):
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def count_is(query: Query, rows: int) -> bool:
    return len(await attempts(query)) == rows


def attempts_in(path: Path) -> list[dict[str, Any]]:
    """The attempts log of a SQLite file."""
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(f"SELECT {COLUMNS} FROM attempts ORDER BY id")  # noqa: S608 - constant
        return [dict(row) for row in rows]


@pytest.fixture
async def lanes() -> AsyncIterator[Lanes]:
    runner = Lanes()
    yield runner
    await runner.stop()


async def test_a_delivered_batch_is_one_row_with_status_latency_and_count(
    outbox: Any,
    query: Query,
    http: HttpClient,
    platform: FakePlatform,
    clock: FakeClock,
    lanes: Lanes,
) -> None:
    """Three new events sent in one request that the platform took: one row, status 200, the
    request's time and latency on the clock, three delivered, no list of seqs (its range)."""

    def slow(_: Any) -> Answer:
        clock.advance(0.2)
        return Answer(200)

    platform.responder = slow
    start = clock.now()
    await append(outbox, ["a", "b", "c"])
    lanes.start(webhook_lane(outbox, http, platform.url, clock))
    await eventually(lambda: count_is(query, 1))
    [row] = await attempts(query)
    assert row == {
        "at": start, "seq_lo": 1, "seq_hi": 3, "seqs": None, "status": 200,
        "latency_ms": pytest.approx(200.0), "delivered": 3, "retrying": 0, "dead": 0,
        "skipped": 0, "reason": "ok", "answer": None, "next_retry_at": None,
    }  # fmt: skip


async def test_a_failed_try_records_its_next_retry_then_the_delivery(
    outbox: Any,
    query: Query,
    http: HttpClient,
    platform: FakePlatform,
    clock: FakeClock,
    lanes: Lanes,
) -> None:
    """A 503 then a 200: a retry row with when it is due (listing its seq: a retry's claim is no
    range) and the platform's answer, then a delivered row."""
    platform.script(Answer(503, {"error": "busy"}), Answer(200))
    await append(outbox, ["a"])
    lanes.start(webhook_lane(outbox, http, platform.url, clock))
    await eventually(lambda: count_is(query, 1))
    clock.advance(1.0)  # the backoff after one failure (no jitter)
    await eventually(lambda: count_is(query, 2))
    failed, delivered = await attempts(query)
    assert (failed["status"], failed["retrying"], failed["reason"]) == (503, 1, "http_503")
    assert failed["next_retry_at"] == pytest.approx(failed["at"] + 1.0)
    assert failed["answer"] is not None and "busy" in failed["answer"]
    assert (delivered["status"], delivered["delivered"], delivered["seqs"]) == (200, 1, "1")


async def test_events_of_one_batch_that_ended_differently_get_a_row_each_with_their_seqs(
    outbox: Any, query: Query, clock: FakeClock
) -> None:
    """One delivered, one rejected: two rows, each listing its own seq, so an event's attempts
    can be found; the rejection's answer is scrubbed of the events' identity and truncated."""
    await append(outbox, ["a", "b"])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    echo = "bad user Jane Doe jane.doe@example.com from 81.2.69.142 " + "x" * 2000
    rejected = Outcome("rejected", "http_400", 400, detail=echo)
    sends = {item.seq: (clock.now(), 0.05) for item in claim.items}
    await outbox.settle(
        claim, [(claim.items[0], DELIVERED), (claim.items[1], rejected)], NO_JITTER, sends=sends
    )
    good, bad = await attempts(query)
    assert (good["seqs"], good["delivered"], good["status"]) == ("1", 1, None)
    assert (bad["seqs"], bad["dead"], bad["status"], bad["reason"]) == ("2", 1, 400, "http_400")
    answer = bad["answer"]
    assert len(answer) == MAX_ANSWER
    for raw in ("Jane", "Doe", "jane.doe@example.com", "81.2.69.142"):
        assert raw not in answer


async def test_a_schema_3_file_gains_the_attempts_log_and_keeps_its_events(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A file written by schema 3 opens at schema 4 with an empty attempts table; its events
    are still there and the next settle writes the log."""
    path = tmp_path / "v3.db"
    box = SqliteOutbox(path, clock=clock)
    await box.open()
    await box.append([NewEvent("shop", "old", clock.now(), ("hook",), codec.encode(make_event()))])
    await box.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE attempts")
        db.execute("PRAGMA user_version = 3")
    box = SqliteOutbox(path, clock=clock)
    await box.open()
    try:
        claim = await box.claim("shop", "hook", 10)
        assert claim is not None and [i.event_id for i in claim.items] == ["old"]
        await box.settle(claim, [(claim.items[0], DELIVERED)], NO_JITTER)
    finally:
        await box.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    [row] = attempts_in(path)
    assert (row["delivered"], row["status"], row["latency_ms"]) == (1, None, None)


async def fill(query: Query, rows: list[tuple[float]]) -> None:
    """Attempts-log rows tried at these times, in this order (plain SQL: either backend)."""
    values = ",".join(f"('shop', 'hook', {at!r}, 1, 1, 1, 0, 0, 0, 'ok')" for (at,) in rows)
    await query(
        "INSERT INTO attempts (store, destination, at, seq_lo, seq_hi, delivered, retrying,"  # noqa: S608 - numbers only
        f" dead, skipped, reason) VALUES {values}"
    )


async def test_purge_drops_rows_past_retention(outbox: Any, query: Query) -> None:
    """Rows tried before the retention horizon go; younger rows stay."""
    await fill(query, [(100.0,), (200.0,), (300.0,), (400.0,)])
    assert await outbox.purge_attempts(before=250.0, max_rows=100) == 2
    assert [row["at"] for row in await attempts(query)] == [300.0, 400.0]


async def test_purge_keeps_at_most_max_rows_the_newest(outbox: Any, query: Query) -> None:
    """Past the row cap the oldest rows go, however young they are."""
    await fill(query, [(float(t),) for t in range(1000, 1010)])
    assert await outbox.purge_attempts(before=0.0, max_rows=3) == 7
    assert [row["at"] for row in await attempts(query)] == [1007.0, 1008.0, 1009.0]


async def test_purge_works_in_bounded_steps(outbox: Any, query: Query) -> None:
    """One call deletes at most PURGE_STEP rows, so the writer is never held long; the next
    call goes on."""
    await fill(query, [(1.0,)] * (PURGE_STEP + 5))
    assert await outbox.purge_attempts(before=10.0, max_rows=10**9) == PURGE_STEP
    assert await outbox.purge_attempts(before=10.0, max_rows=10**9) == 5
    assert await attempts(query) == []


async def test_a_running_tagless_purges_the_log_by_its_row_cap(
    tmp_path: Path, platform: FakePlatform
) -> None:
    """With ``attempts_max_rows: 2`` and a fast maintenance round, five batches delivered one
    by one leave only the two newest rows."""
    config = write_config_dir(
        tmp_path,
        f"store: shop\nwrite_keys: [shop-key]\ndestinations:\n"
        f"  - {{id: hook, type: webhook, url: '{platform.url}/hook'}}\n",
    )
    yaml = config / "tagless.yaml"
    yaml.write_text(
        yaml.read_text().replace(
            "outbox: {path: ", "outbox: {attempts_max_rows: 2, wal_checkpoint_secs: 0.1, path: "
        )
    )
    running = await RunningTagless(config).start()
    try:
        for i in range(5):  # one batch each: the next is sent once the last one arrived
            body = {"messageId": f"m-{i}", "userId": "u1", "event": "Order Completed"}
            assert (await running.post("/v1/track", body, key="shop-key"))[0] == 200
            await eventually(lambda i=i: len(platform.requests) == i + 1)

        def kept() -> list[tuple[int, int]]:
            rows = attempts_in(config / "tagless.db")
            return [(row["seq_lo"], row["delivered"]) for row in rows]

        await eventually(lambda: kept() == [(4, 1), (5, 1)])
    finally:
        await running.stop()
