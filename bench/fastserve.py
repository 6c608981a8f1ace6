"""A lean HTTP/1.1 server for the bench's fake platforms: httptools' parser on an asyncio
Protocol, keep-alive and pipelining, one synchronous handler per request.

The fakes stand in for platforms that, in production, run on someone else's machines: every
CPU cycle they spend here is taken from Tagless, which shares the 2 cores with them. aiohttp's
server costs tens of microseconds of Python per request (request and response objects,
middlewares, the router); this costs a parser callback and one write, so the figures measure
Tagless, not the fakes. Answers are written in request order, so a client may pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Final, cast
from urllib.parse import parse_qsl

import httptools

#: What a handler is given: method, path, query (decoded pairs), headers (lower-case names),
#: body.
Request = tuple[str, str, dict[str, str], dict[str, str], bytes]
#: What it answers: status, content type (None: no body), body.
Answer = tuple[int, str | None, bytes]
Handler = Callable[[Request], Answer]

_REASONS: Final = {status.value: status.phrase for status in HTTPStatus}


def _head(status: int, content_type: str | None, length: int, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {length}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Connection(asyncio.Protocol):
    """One client connection: parse, answer each complete request at once."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(_head(400, None, 0, keep_alive=False))
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        url = httptools.parse_url(self._url)
        query = dict(parse_qsl(url.query.decode())) if url.query else {}
        method = self.parser.get_method().decode()
        request = (method, url.path.decode(), query, self._headers, b"".join(self._body))
        status, content_type, body = self.handler(request)
        keep_alive = self.parser.should_keep_alive()
        self.transport.write(_head(status, content_type, len(body), keep_alive) + body)
        if not keep_alive:
            self.transport.close()


async def start(handler: Handler, port: int = 0) -> asyncio.Server:
    """Listen on 127.0.0.1:``port`` (0: a free one) in the running loop."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Connection(handler), "127.0.0.1", port, backlog=1024)


def run(handler: Handler, port: int) -> None:
    """Serve ``handler`` on 127.0.0.1:``port`` with uvloop until the process is stopped."""
    import uvloop

    async def main() -> None:
        async with await start(handler, port) as server:
            await server.serve_forever()

    uvloop.run(main())
