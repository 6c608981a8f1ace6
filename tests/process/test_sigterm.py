"""Reliability test 16: SIGTERM under load exits 0 in time and loses no acknowledged event."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import pytest
from harness import (
    ACKED,
    History,
    Sink,
    SinkRequest,
    TaglessServer,
    answer_ok,
    delivery_rows,
    post_batch,
    wait_until,
)

#: Time allowed beyond shutdown_grace_secs for the process to exit (interpreter teardown).
EXIT_MARGIN_SECS = 3.0
#: How long the test watches for an exit at all (longer than allowed, to measure a slow exit).
EXIT_WATCH_SECS = 12.0
DELIVERY_WAIT_SECS = 25.0
CLIENTS = 4


@dataclass
class Stopped:
    """What a SIGTERM under load looked like from outside."""

    history: History
    code: int | None
    exit_secs: float
    stopping_at: float | None  # the server's "tagless_stopping" log time (Unix seconds)
    stopped_logged: bool
    delivered_before_exit: set[str]


async def sigterm_under_load(
    server: TaglessServer, sink: Sink, *, load_secs: float, grace: float
) -> Stopped:
    """Stream batches from several clients, SIGTERM the server mid-load, keep sending until
    it has exited, and return what happened."""
    await server.start()
    url = server.config.ingest_url
    run = uuid.uuid4().hex[:6]
    history = History()
    stop_load = asyncio.Event()

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        mine = random.Random(n)
        batch = 0
        while not stop_load.is_set():
            ids = [f"st-{run}-c{n}-b{batch}-{i}" for i in range(mine.randint(20, 50))]
            batch += 1
            sent = await post_batch(session, url, ids, within=5.0)
            history.add(sent)
            await asyncio.sleep(0.01 if sent.outcome == ACKED else 0.05)

    connector = aiohttp.TCPConnector(limit=CLIENTS, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = [asyncio.create_task(client(n, session)) for n in range(CLIENTS)]
        try:
            await asyncio.sleep(load_secs)
            began = time.monotonic()
            server.terminate()
            code = await server.wait_exit(grace + EXIT_WATCH_SECS)
            exit_secs = time.monotonic() - began
            await asyncio.sleep(0.3)  # the clients also meet the closed port
        finally:
            stop_load.set()
            await asyncio.wait_for(asyncio.gather(*clients), 15)
    if code is None:
        server.kill9()
    return Stopped(
        history,
        code,
        exit_secs,
        server.logged_at("tagless_stopping"),
        server.logged_at("tagless_stopped") is not None,
        set(sink.delivered()),
    )


def check_stop(stopped: Stopped, server: TaglessServer, grace: float) -> None:
    """Exit 0, and no request that began after shutdown was acked (timing: see check_exit_time)."""
    assert stopped.code is not None, (
        f"still running {grace + EXIT_WATCH_SECS}s after SIGTERM\n{server.tail()}"
    )
    assert stopped.code == 0, f"exit code {stopped.code} after SIGTERM\n{server.tail()}"
    assert stopped.stopped_logged, f"no tagless_stopped log line\n{server.tail()}"
    assert stopped.stopping_at is not None, f"no tagless_stopping log line\n{server.tail()}"
    after = [s for s in stopped.history.sent if s.wall > stopped.stopping_at]
    assert after, "no request was made after the SIGTERM took effect"
    wrong = [(s.outcome, s.status, s.error) for s in after if s.outcome == ACKED]
    assert not wrong, f"acked after shutdown began: {wrong[:5]}"
    statuses = {s.status for s in after}
    assert statuses <= {503, None}, f"answers after shutdown began: {statuses}"


def check_exit_time(stopped: Stopped, grace: float) -> None:
    """The process was gone within shutdown_grace_secs plus a margin for interpreter teardown."""
    limit = grace + EXIT_MARGIN_SECS
    assert stopped.exit_secs <= limit, (
        f"exit took {stopped.exit_secs:.2f}s after SIGTERM; shutdown_grace_secs is {grace:g}"
        f" (allowed {limit:g}s)"
    )


async def restart_and_collect(
    server: TaglessServer, sink: Sink, acked: set[str]
) -> tuple[bool, set[str]]:
    """Start the server again on the same outbox and wait until every acked event arrived."""
    await server.start()
    arrived = await wait_until(lambda: acked <= set(sink.delivered()), DELIVERY_WAIT_SECS, 0.1)
    missing = acked - set(sink.delivered())
    code = await server.stop()
    assert code == 0, f"exit code {code} after the second SIGTERM\n{server.tail()}"
    return arrived, missing


def report(label: str, stopped: Stopped, sink: Sink) -> str:
    acked = stopped.history.ids(ACKED)
    delivered = sink.delivered()
    extra = sum(delivered.values()) - len(delivered)
    text = (
        f"{label}: requests {dict(stopped.history.counts())}; {len(acked)} events acked,"
        f" {len(acked & stopped.delivered_before_exit)} delivered before exit, exit after"
        f" {stopped.exit_secs:.2f}s; {extra} duplicate deliveries"
    )
    print(f"\n{text}")
    return text


@pytest.mark.slow
async def test_sigterm_under_load_exits_zero_and_loses_nothing(
    tagless: Callable[..., TaglessServer],
) -> None:
    """SIGTERM during ingest and slow deliveries exits 0 within the grace period, refuses later
    requests, and every acked event is delivered before exit or after restart."""
    grace = 5.0

    async def slow(_: SinkRequest) -> int:
        await asyncio.sleep(0.5)
        return 200

    async with Sink(slow) as sink:
        server = tagless(sink.url, shutdown_grace_secs=grace)
        stopped = await sigterm_under_load(server, sink, load_secs=1.5, grace=grace)
        summary = report("SIGTERM, sink 0.5 s per request", stopped, sink)
        check_stop(stopped, server, grace)
        acked = stopped.history.ids(ACKED)
        assert acked, "no request was acknowledged before the SIGTERM"
        arrived, missing = await restart_and_collect(server, sink, acked)
    assert arrived, f"{len(missing)} acked events lost, e.g. {sorted(missing)[:5]}\n{summary}"
    check_exit_time(stopped, grace)


@pytest.mark.slow
async def test_sigterm_gives_back_deliveries_stuck_past_grace(
    tagless: Callable[..., TaglessServer],
) -> None:
    """Deliveries still unanswered when the grace period ends are given back, the process exits 0
    within the grace period, and the events are delivered after restart."""
    grace = 1.0
    release = asyncio.Event()

    async def hang(_: SinkRequest) -> int:
        # Answers only after the router is gone; never counts as a delivery.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 30)
        return 503

    async with Sink(hang) as sink:
        server = tagless(sink.url, shutdown_grace_secs=grace)
        stopped = await sigterm_under_load(server, sink, load_secs=1.0, grace=grace)
        summary = report("SIGTERM, sink hanging past the grace period", stopped, sink)
        check_stop(stopped, server, grace)
        assert sink.requests, "no delivery was in flight at the SIGTERM"
        assert not stopped.delivered_before_exit, "the hanging sink answered before exit"
        sink.behaviour = answer_ok
        release.set()
        acked = stopped.history.ids(ACKED)
        arrived, missing = await restart_and_collect(server, sink, acked)
    assert arrived, f"{len(missing)} acked events lost, e.g. {sorted(missing)[:5]}\n{summary}"
    check_exit_time(stopped, grace)


@pytest.mark.slow
async def test_sigterm_starts_no_new_delivery(tagless: Callable[..., TaglessServer]) -> None:
    """After SIGTERM the dispatcher only finishes the batches it had in flight: it sends no new
    batch and cuts none short."""
    grace = 5.0

    async def slow(_: SinkRequest) -> int:
        await asyncio.sleep(1.5)
        return 200

    async with Sink(slow) as sink:
        server = tagless(sink.url, shutdown_grace_secs=grace, max_batch_size=50)
        await server.start()
        url = server.config.ingest_url
        ids = [f"nn-{b}-{i}" for b in range(20) for i in range(50)]
        async with aiohttp.ClientSession() as session:
            for start in range(0, len(ids), 50):
                sent = await post_batch(session, url, ids[start : start + 50])
                assert sent.outcome == ACKED, (sent.status, sent.error)
        # A backlog of 20 batches; wait until the 4 allowed are in flight, then stop.
        assert await wait_until(lambda: len(sink.requests) >= 4, 10), server.tail()
        began = time.monotonic()
        server.terminate()
        code = await server.wait_exit(grace + EXIT_WATCH_SECS)
        exit_secs = time.monotonic() - began
        stopping_at = server.logged_at("tagless_stopping")
        assert code == 0, f"exit code {code} after SIGTERM\n{server.tail()}"
        assert stopping_at is not None, server.tail()
        late = [
            (round(r.arrived - stopping_at, 2), len(r.ids), r.status)
            for r in sink.requests
            if r.arrived > stopping_at
        ]
        cut = [(row["event_id"], row["reason"]) for row in delivery_rows(server.config.db_path)]
        arrived, missing = await restart_and_collect(server, sink, set(ids))
        delivered = sink.delivered()
    print(
        f"\nSIGTERM with a backlog: exit after {exit_secs:.2f}s; {len(late)} delivery requests"
        f" began after shutdown; {len(cut)} retry rows left; "
        f"{sum(delivered.values()) - len(delivered)} duplicate deliveries"
    )
    assert arrived, f"{len(missing)} acked events lost, e.g. {sorted(missing)[:5]}"
    assert not late, (
        f"delivery requests begun after SIGTERM (s after stopping, events, status): {late}"
    )
    assert not cut, f"deliveries cut short by the shutdown and left to retry: {cut[:3]} ..."
