"""The connection cap: idle floods cannot lock clients out, requests in flight always finish."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from harness import (
    ACKED,
    EVENT,
    TaglessServer,
    post_batch,
    request_head,
    status_of,
    stored_event_ids,
    wait_until,
)

from router.config import ServerConfig
from router.server import DEFAULT_MAX_CONNECTIONS_CEILING, HEADROOM, ingest_limits
from router.startup import StartupError
from router.testing.server import RunningTagless

Start = Callable[..., Awaitable[RunningTagless]]
WAIT_SECS = 10.0


class Idle:
    """Connections that were opened and then say nothing; each knows when the server hung up."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.hangups: list[asyncio.Task[bytes]] = []

    async def open(self, port: int, count: int) -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            self.writers.append(writer)
            self.hangups.append(asyncio.create_task(reader.read()))

    @property
    def still_open(self) -> int:
        return sum(not task.done() for task in self.hangups)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for task in self.hangups:
            task.cancel()


@pytest.fixture
async def idle() -> AsyncIterator[Idle]:
    connections = Idle()
    yield connections
    connections.close()


async def test_an_idle_flood_beyond_max_connections_does_not_lock_out_a_client(
    in_process: Start, idle: Idle
) -> None:
    """With every slot held by silent connections, a new client still gets its 200: the
    longest-idle connections are closed to make room, and no more than the cap stay open."""
    tagless = await in_process(max_connections=8, header_timeout_secs=60)
    await idle.open(tagless.app.ports["ingest"], 30)
    assert await wait_until(lambda: idle.still_open <= 8, WAIT_SECS), idle.still_open
    status, answer = await tagless.post("/v1/track", key="shop-key", data=EVENT)
    assert (status, answer) == (200, {"success": True})


async def test_at_the_cap_requests_in_flight_finish_and_new_connections_are_refused(
    in_process: Start,
) -> None:
    """When every slot carries a request still sending its body, a new connection is closed at
    once, and each request in flight is answered 200 when its body completes."""
    tagless = await in_process(max_connections=4, header_timeout_secs=60, body_timeout_secs=60)
    port = tagless.app.ports["ingest"]
    flights = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
    bodies = [EVENT.replace(b"m-1", f"m-{i}".encode()) for i in range(4)]
    for (reader, writer), body in zip(flights, bodies, strict=True):
        writer.write(request_head(len(body), expect=True))
        go_on = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_SECS)
        assert status_of(go_on) == 100  # the handler is reading: a request in flight
        writer.write(body[:10])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await asyncio.wait_for(reader.read(), WAIT_SECS) == b""  # hung up, unanswered
    finally:
        writer.close()
    for (reader, writer), body in zip(flights, bodies, strict=True):
        writer.write(body[10:])
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_SECS)
        assert status_of(answer) == 200, answer
        writer.close()


def test_the_default_max_connections_stays_below_the_open_file_limit() -> None:
    """Derived from RLIMIT_NOFILE: the headroom (or half the limit) stays free, and a huge
    limit is capped."""
    assert ingest_limits(ServerConfig(), files=1024).max_connections == 1024 - HEADROOM
    assert ingest_limits(ServerConfig(), files=256).max_connections == 128  # half, at least
    huge = ingest_limits(ServerConfig(), files=1 << 20).max_connections
    assert huge == DEFAULT_MAX_CONNECTIONS_CEILING
    assert ingest_limits(ServerConfig(max_connections=50), files=256).max_connections == 50


def test_a_max_connections_the_file_limit_cannot_hold_refuses_to_start() -> None:
    """server.max_connections above what the open-file limit leaves is a start-up error."""
    with pytest.raises(StartupError, match=r"server\.max_connections is 500 .*ulimit -n"):
        ingest_limits(ServerConfig(max_connections=500), files=256)


@pytest.mark.slow
async def test_with_256_open_files_400_idle_connections_do_not_stop_ingest(
    tagless: Callable[..., TaglessServer],
) -> None:
    """The field report: file limit 256, 400 idle connections; ingest still acknowledges."""
    server = tagless("http://127.0.0.1:9/unused")
    await server.start(open_files=256)
    flood: list[socket.socket] = []
    try:
        for _ in range(400):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", server.config.ingest_port))
            flood.append(sock)
        await asyncio.sleep(1.0)  # let the server accept (and shed) what it can
        event_id = f"flood-{uuid.uuid4()}"
        async with aiohttp.ClientSession() as session:
            sent = await post_batch(session, server.config.ingest_url, [event_id], within=10.0)
        assert sent.outcome == ACKED, (sent, server.tail())
        assert stored_event_ids(server.config.db_path)[event_id] == 1
        assert server.running
    finally:
        for sock in flood:
            sock.close()
