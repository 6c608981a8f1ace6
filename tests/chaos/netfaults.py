"""A TCP proxy in front of a fake platform that breaks connections on demand, in the manner of
Toxiproxy: long latency, resets, half-closed sockets, a peer that accepts and never answers;
and slow-loris clients that trickle a request head into the ingest listener."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Literal

Mode = Literal["pass", "latency", "reset", "half_close", "blackhole"]
CHUNK = 65536


class FaultProxy:
    """Listens on 127.0.0.1 and forwards to the platform; every chunk a client sends meets the
    :attr:`mode` of the moment (kept-alive connections too).

    pass: bytes flow both ways. latency: each answer is held ``latency`` seconds. reset: the
    connection is reset (RST). half_close: the proxy closes its sending side (FIN) and answers
    nothing. blackhole: read, never answered, never closed.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode: Mode = "pass"
        self.latency = 0.0
        self.port = 0
        #: Connections each fault mode broke (answers held, for latency).
        self.broken: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up: asyncio.StreamWriter | None = None
        back: asyncio.Task[None] | None = None
        try:
            while data := await reader.read(CHUNK):
                mode = self.mode
                if mode != "pass" and mode != "latency":
                    self.broken[mode] = self.broken.get(mode, 0) + 1
                    await self._break(mode, reader, writer)
                    return
                if up is None:
                    up_reader, up = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                    back = asyncio.create_task(self._answers(up_reader, writer))
                up.write(data)
                await up.drain()
        except ConnectionError:
            pass
        finally:
            self._tasks.discard(task)
            if back is not None:
                back.cancel()
            for end in (up, writer):
                if end is not None:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        end.close()

    async def _break(
        self, mode: Mode, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if mode == "half_close":
            writer.write_eof()
        while await reader.read(CHUNK):  # half_close and blackhole: hear all, answer nothing
            pass
        if mode == "blackhole":
            await asyncio.Event().wait()  # never closed from this side, until the proxy stops

    async def _answers(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(CHUNK):
                if self.mode == "latency":
                    self.broken["latency"] = self.broken.get("latency", 0) + 1
                    await asyncio.sleep(self.latency)
                sink.write(data)
                await sink.drain()


async def slow_loris(port: int, connections: int, stop: asyncio.Event) -> tuple[int, int]:
    """Open ``connections`` to the ingest listener, each sending one byte of a request head a
    second until ``stop``; return how many were opened and how many the server closed."""
    head = b"POST /v1/batch HTTP/1.1\r\nHost: tagless\r\nContent-Type: application/json\r\n"

    async def one() -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        try:
            for byte in head * 100:
                if stop.is_set():
                    return False
                writer.write(bytes([byte]))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(CHUNK), 1.0) == b"":
                        return True  # the server hung up
            return False
        except ConnectionError:
            return True
        finally:
            writer.close()

    closed = await asyncio.gather(*(one() for _ in range(connections)))
    return connections, sum(closed)
