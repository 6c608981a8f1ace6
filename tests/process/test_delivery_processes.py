"""``server.delivery_processes``: the lanes dealt over delivery processes, the main process
delivering nothing. Real `tagless serve` processes: every acknowledged event reaches every
destination, through whichever process runs its lane; one killed is started again and its lanes
go on; a reload that adds a destination deals the lanes afresh; they stop with the main process,
on SIGTERM and on its kill -9; /metrics counts their deliveries."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

from harness import ACKED, Sink, TaglessServer, child_pids, ingest_pids, wait_until
from test_ingest_processes import alive, metric, send, wait_until_async

DELIVERY = b"router.delivery_process"


def started(server: TaglessServer) -> dict[str, int]:
    """Lanes per delivery process, from each start's log, the latest start winning."""
    return {
        e["process"]: e["lanes"]
        for e in server.log_events()
        if e["event"] == "tagless_delivery_started"
    }


async def delivered_once_to_each(
    server: TaglessServer, sinks: list[Sink], run: str, batches: int
) -> None:
    """Post ``batches`` batches of 5 events; each is acknowledged and reaches every sink once."""
    history = await send(server.config.ingest_url, run, batches)
    acked = history.ids(ACKED)
    assert len(acked) == 5 * batches, history.counts()
    for sink in sinks:
        assert await wait_until(lambda s=sink: acked <= set(s.delivered()), 20), server.tail()
        assert max(sink.delivered().values()) == 1  # no fault: nothing sent twice


async def test_every_destination_gets_every_event_through_the_delivery_processes(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with AsyncExitStack() as stack:
        sinks = [await stack.enter_async_context(Sink()) for _ in range(3)]
        server = tagless(
            sinks[0].url,
            more_hooks=(sinks[1].url, sinks[2].url),
            ingest_processes=1,
            delivery_processes=2,
        )
        await server.start()
        assert sorted(child_pids(server, DELIVERY)) == [1, 2], server.tail()
        # three lanes dealt over two processes
        assert await wait_until(lambda: len(started(server)) == 2, 10), server.tail()
        assert started(server) == {"delivery-1": 2, "delivery-2": 1}
        await delivered_once_to_each(server, sinks, "all", 40)
        # the main process adds what its delivery processes delivered (every second)
        ok = await wait_until_async(
            lambda: metric(server, "tagless_deliveries_total"), 600, within=10
        )
        assert ok, await metric(server, "tagless_deliveries_total")
        assert await server.stop() == 0
    stopped = {e["number"] for e in server.log_events() if e["event"] == "delivery_process_stopped"}
    assert stopped == {1, 2}


async def test_a_killed_delivery_process_is_started_again_and_its_lanes_go_on(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with AsyncExitStack() as stack:
        sinks = [await stack.enter_async_context(Sink()) for _ in range(2)]
        server = tagless(sinks[0].url, more_hooks=(sinks[1].url,), delivery_processes=2)
        await server.start()
        running = "tagless_child_processes"
        assert await metric(server, running) == 2
        before = child_pids(server, DELIVERY)
        os.kill(before[1], signal.SIGKILL)
        # /metrics shows one missing until it runs again (it waits 0.5 s before restarting)
        assert await wait_until_async(lambda: metric(server, running), 1, within=5)
        history = await send(server.config.ingest_url, "during", 24)
        assert await wait_until(
            lambda: child_pids(server, DELIVERY).get(1) not in (None, before[1]), 15
        ), server.tail()
        assert child_pids(server, DELIVERY)[2] == before[2]
        exited = [e for e in server.log_events() if e["event"] == "delivery_process_exited"]
        assert exited and exited[0]["number"] == 1 and exited[0]["status"] == -signal.SIGKILL
        acked = history.ids(ACKED)
        assert len(acked) == 120, history.counts()
        for sink in sinks:  # the killed process's lane resumes from its cursor
            assert await wait_until(lambda s=sink: acked <= set(s.delivered()), 20), server.tail()
        assert await wait_until_async(lambda: metric(server, running), 2, within=10)
        assert await server.stop() == 0


async def test_a_reload_that_adds_a_destination_deals_the_lanes_afresh(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with AsyncExitStack() as stack:
        first, second = [await stack.enter_async_context(Sink()) for _ in range(2)]
        server = tagless(first.url, delivery_processes=2)
        await server.start()
        assert await wait_until(lambda: len(started(server)) == 2, 10), server.tail()
        assert started(server) == {"delivery-1": 1, "delivery-2": 0}
        store = server.config.directory / "stores" / "shop.yaml"
        store.write_text(
            store.read_text()
            + f'  - {{id: hook2, type: webhook, url: "{second.url}/hook", max_batch_size: 10}}\n'
        )
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)
        assert await wait_until(
            lambda: started(server) == {"delivery-1": 1, "delivery-2": 1}, 20
        ), server.tail()
        history = await send(server.config.ingest_url, "after", 12)
        acked = history.ids(ACKED)
        assert len(acked) == 60, history.counts()
        for sink in (first, second):
            assert await wait_until(lambda s=sink: acked <= set(s.delivered()), 20), server.tail()
        # every delivery process was stopped before any was started again
        events = [
            e["event"]
            for e in server.log_events()
            if e["event"] in ("delivery_process_stopped", "delivery_process_started")
        ]
        assert events[2:] == ["delivery_process_stopped"] * 2 + ["delivery_process_started"] * 2
        assert await server.stop() == 0


async def test_delivery_processes_stop_when_the_main_process_is_killed(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with Sink() as sink:
        server = tagless(sink.url, delivery_processes=2)
        await server.start()
        pids = list(child_pids(server, DELIVERY).values())
        assert len(pids) == 2, server.tail()
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)  # the main process only, not its group
        assert await wait_until(lambda: not any(alive(pid) for pid in pids), 15), server.tail()
        gone = [e for e in server.log_events() if e["event"] == "main_process_gone"]
        assert {e["process"] for e in gone} == {"delivery-1", "delivery-2"}


async def test_delivery_processes_share_a_postgresql_outbox(
    tagless: Callable[..., TaglessServer], pg_url: str
) -> None:
    """The lanes' leases live in PostgreSQL: two delivery processes, each holding its own
    lanes, deliver everything the ingest process took, once."""
    async with AsyncExitStack() as stack:
        sinks = [await stack.enter_async_context(Sink()) for _ in range(2)]
        server = tagless(
            sinks[0].url,
            more_hooks=(sinks[1].url,),
            outbox_url=pg_url,
            ingest_processes=1,
            delivery_processes=2,
        )
        await server.start()
        assert await wait_until(lambda: len(started(server)) == 2, 10), server.tail()
        assert started(server) == {"delivery-1": 1, "delivery-2": 1}
        await delivered_once_to_each(server, sinks, "pg", 20)
        assert await server.stop() == 0


def nice_of(pid: int) -> int:
    """The nice value of process ``pid``'s main thread (``/proc/<pid>/stat`` field 19)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


async def test_delivery_nice_lowers_the_delivery_processes_not_the_ingest_ones(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with Sink() as sink:
        server = tagless(sink.url, ingest_processes=1, delivery_processes=2, delivery_nice=7)
        await server.start()
        assert await wait_until(lambda: len(started(server)) == 2, 10), server.tail()
        assert server.proc is not None
        base = os.getpriority(os.PRIO_PROCESS, 0)  # what Tagless was started with
        assert [nice_of(pid) for pid in child_pids(server, DELIVERY).values()] == [base + 7] * 2
        assert [nice_of(pid) for pid in ingest_pids(server).values()] == [base]
        assert await server.stop() == 0


def policies(pid: int) -> dict[int, int]:
    """The scheduling policy of each thread of process ``pid``, by thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            found[int(task.name)] = os.sched_getscheduler(int(task.name))
    return found


async def test_delivery_idle_gives_the_delivering_processes_sched_idle_but_not_their_writers(
    tagless: Callable[..., TaglessServer],
) -> None:
    """Delivery processes run SCHED_IDLE: a waking ingest process takes their CPU at once.
    Their outbox writer threads keep the normal policy (their commits hold the lock ingest
    waits for), and so do the ingest processes and the main process, which delivers nothing
    here (``delivery_nice`` lowers it instead)."""
    async with Sink() as sink:
        server = tagless(
            sink.url, ingest_processes=1, delivery_processes=2, delivery_nice=3, delivery_idle=True
        )
        await server.start()
        assert await wait_until(lambda: len(started(server)) == 2, 10), server.tail()
        assert server.proc is not None
        await delivered_once_to_each(server, [sink], "hook", 5)
        base = os.getpriority(os.PRIO_PROCESS, 0)
        for pid in child_pids(server, DELIVERY).values():
            threads = policies(pid)
            assert threads.pop(pid) == os.SCHED_IDLE, threads  # the event loop's thread
            # the outbox writer, started before the loop's thread lowered itself (Python 3.11
            # does not name threads for the OS; threads started later inherit SCHED_IDLE)
            assert os.SCHED_OTHER in threads.values(), threads
        for pid in ingest_pids(server).values():
            assert set(policies(pid).values()) == {os.SCHED_OTHER}
        assert os.sched_getscheduler(server.proc.pid) == os.SCHED_OTHER
        assert nice_of(server.proc.pid) == base + 3
        assert await server.stop() == 0
