"""``server.ingest_processes``: ingest in several processes sharing the port, the main one
delivering. Real `tagless serve` processes: every acknowledged event is delivered once the
events came in through whichever process; one killed is started again; they stop with the main
process, on SIGTERM and on its kill -9; a reload reaches them; /metrics counts theirs."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from harness import (
    ACKED,
    ADMIN_TOKEN,
    History,
    Sink,
    TaglessServer,
    ingest_pids,
    post_batch,
    wait_until,
)

PROCESSES = 2
NEW_KEY = {"Authorization": "Basic " + base64.b64encode(b"new-key:").decode()}
#: Connections the test opens: SO_REUSEPORT hashes each to one of the processes.
CONNECTIONS = 12


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def send(url: str, run: str, batches: int, per_connection: int = 1) -> History:
    """``batches`` batches of 5 events over CONNECTIONS connections (one session each)."""
    history = History()

    async def client(n: int) -> None:
        async with aiohttp.ClientSession() as session:
            for b in range(n, batches, CONNECTIONS):
                ids = [f"{run}-{b}-{i}" for i in range(5)]
                history.add(await post_batch(session, url, ids))

    await asyncio.gather(*(client(n) for n in range(min(CONNECTIONS, batches))))
    return history


async def metric(server: TaglessServer, name: str) -> float:
    url = f"http://127.0.0.1:{server.config.admin_port}/metrics"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as answer,
    ):
        text = await answer.text()
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


async def test_events_through_every_process_are_delivered_and_counted(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with Sink() as sink:
        server = tagless(sink.url, ingest_processes=PROCESSES)
        await server.start()
        pids = ingest_pids(server)
        assert sorted(pids) == [1, 2], server.tail()
        history = await send(server.config.ingest_url, "all", 60)
        acked = history.ids(ACKED)
        assert len(acked) == 300, history.counts()
        assert await wait_until(lambda: acked <= set(sink.delivered()), 20), server.tail()
        # the main process counts what its ingest processes took (they report every second)
        assert await wait_until_async(
            lambda: metric(server, "tagless_events_received_total"), 300, within=10
        )
        assert await server.stop() == 0
    stopped = {e["number"] for e in server.log_events() if e["event"] == "ingest_process_stopped"}
    assert stopped == {1, 2}


async def wait_until_async(
    read: Callable[[], Awaitable[float]], want: float, *, within: float
) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await read() == want:
            return True
        await asyncio.sleep(0.2)
    return False


async def test_a_killed_ingest_process_is_started_again_and_nothing_acked_is_lost(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with Sink() as sink:
        server = tagless(sink.url, ingest_processes=PROCESSES)
        await server.start()
        before = ingest_pids(server)
        os.kill(before[1], signal.SIGKILL)
        # meanwhile the other process serves: every request answered is one of its
        history = await send(server.config.ingest_url, "during", 24)
        assert await wait_until(lambda: ingest_pids(server).get(1) not in (None, before[1]), 15)
        assert ingest_pids(server)[2] == before[2]
        exited = [e for e in server.log_events() if e["event"] == "ingest_process_exited"]
        assert exited and exited[0]["number"] == 1 and exited[0]["status"] == -signal.SIGKILL
        assert await wait_until(
            lambda: any(
                e["event"] == "tagless_ingest_started" and e.get("process") == "ingest-1"
                for e in server.log_events()[-20:]
            ),
            20,
        )
        history.sent += (await send(server.config.ingest_url, "after", 24)).sent
        acked = history.ids(ACKED)
        assert {i.split("-")[0] for i in acked} == {"during", "after"}, history.counts()
        assert await wait_until(lambda: acked <= set(sink.delivered()), 20), server.tail()
        assert await server.stop() == 0


async def test_ingest_processes_stop_when_the_main_process_is_killed(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with Sink() as sink:
        server = tagless(sink.url, ingest_processes=PROCESSES)
        await server.start()
        pids = list(ingest_pids(server).values())
        assert len(pids) == PROCESSES, server.tail()
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)  # the main process only, not its group
        # each sees its channel close and stops by itself, answering what it holds
        assert await wait_until(lambda: not any(alive(pid) for pid in pids), 15), server.tail()
        assert await wait_until(
            lambda: (
                sum(e["event"] == "main_process_gone" for e in server.log_events()) == PROCESSES
            ),
            5,
        ), server.tail()


async def test_a_reload_reaches_the_ingest_processes(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with Sink() as sink:
        server = tagless(sink.url, ingest_processes=PROCESSES)
        await server.start()
        url = f"{server.config.ingest_url}/v1/track"
        store = server.config.directory / "stores" / "shop.yaml"
        store.write_text(store.read_text().replace("write_keys: [", "write_keys: [new-key, "))
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)
        body = {"event": "Signed Up", "userId": "u1", "messageId": "m-new-key"}

        async def new_key_works_everywhere() -> bool:
            # fresh connections land on either process: each must know the key
            for _ in range(CONNECTIONS):
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(url, json=body, headers=NEW_KEY) as answer,
                ):
                    if answer.status != 200:
                        return False
            return True

        deadline = time.monotonic() + 15
        while not await new_key_works_everywhere():
            assert time.monotonic() < deadline, server.tail()
            await asyncio.sleep(0.2)
        reloads = [e for e in server.log_events() if e["event"] == "config_reloaded"]
        assert {e.get("process") for e in reloads} >= {None, "ingest-1", "ingest-2"}
        assert await server.stop() == 0
