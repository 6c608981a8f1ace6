"""HTTP/1.1 pipelining to one origin: POSTs written back to back on a few kept-alive connections.

GA4 takes one client per request, so delivery is one small request per event. aiohttp's client
sends one request per connection at a time; this sender writes many requests on each
connection without waiting and reads the answers in order (RFC 9112 §9.3.2, "Pipelining").

What it guarantees, per request: exactly one :class:`Response` or one :class:`TransportError`.

- A response carrying ``Connection: close`` ends its connection; the requests written after it
  were not processed (RFC 9112 §9.6: the server "MUST NOT process any further requests received
  on that connection"), so they are sent again on another connection.
- A connection lost or reset before an answer fails each unanswered request with
  ``TransportError("network")``: the server may have processed it, and a POST is not retried
  blindly (RFC 9112 §9.3.1); the outbox retries it as it retries any transport failure.
- A request with no answer within ``timeout_secs`` (waiting for room, connecting and answering
  included, like aiohttp's ``total`` timeout) fails with ``"timeout"``; its connection cannot
  skip the missing answer, so it is closed and its other unanswered requests fail the same way.
- Answers are read with ``Content-Length``, chunked transfer coding or up to the close; bodies
  are kept up to the same cap as ``router.http`` and the rest is read and discarded.
- https uses the default SSL context (certificates and host name verified), as aiohttp does.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Final, cast
from urllib.parse import urlsplit

from router.sdk import Response, TransportError, parse_retry_after

#: As ``router.http.MAX_READ_BODY``: what is kept of an answer's body.
MAX_READ_BODY: Final = 1 << 20
#: A response head (status line and headers) longer than this is refused as unreadable.
MAX_HEAD: Final = 64 * 1024
#: An idle connection is closed after this long (aiohttp's keep-alive default), before a server
#: that times it out can close it while a request is being written.
IDLE_SECS: Final = 15.0

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE = range(7)
_NO_BODY: Final = frozenset({204, 304})


class _Request:
    """One request's bytes, the future of its answer, and the connection it was written on."""

    __slots__ = ("connection", "data", "future")

    def __init__(self, data: bytes, future: asyncio.Future[Response]) -> None:
        self.data = data
        self.future = future
        self.connection: _Connection | None = None


class PipelinedClient:
    """POSTs to one origin over at most ``connections`` connections, each with at most
    ``depth`` requests written and not yet answered; further requests wait for room."""

    def __init__(
        self,
        origin: str,
        *,
        connections: int = 4,
        depth: int = 32,
        ssl_context: ssl.SSLContext | None = None,
        idle_secs: float = IDLE_SECS,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// origin, got {origin!r}")
        https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if https else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        self._https = https
        self._ssl_context = ssl_context
        self.max_connections = connections
        self.depth = depth
        self.idle_secs = idle_secs
        self._connections: list[_Connection] = []
        self._waiting: deque[_Request] = deque()

    async def post(
        self, target: str, body: bytes, headers: Mapping[str, str], *, timeout_secs: float
    ) -> Response:
        """POST ``body`` to ``target`` (path and query) and read the answer, or raise
        :class:`TransportError`."""
        [answer] = await self.post_all(target, [body], headers, timeout_secs=timeout_secs)
        if isinstance(answer, TransportError):
            raise answer
        return answer

    async def post_all(
        self,
        target: str,
        bodies: Sequence[bytes],
        headers: Mapping[str, str],
        *,
        timeout_secs: float,
    ) -> list[Response | TransportError]:
        """POST each body to ``target`` (path and query), all at once; the answers in order.

        Each request gets ``timeout_secs`` from now, as if sent alone: one deadline serves all.
        """
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = f"POST {target} HTTP/1.1\r\nHost: {self._host_header}\r\n{lines}Content-Length: "
        prefix = head.encode("latin-1")
        loop = asyncio.get_running_loop()
        requests = []
        for body in bodies:
            request = _Request(b"%s%d\r\n\r\n%s" % (prefix, len(body), body), loop.create_future())
            self._submit(request)
            requests.append(request)
        answers: list[Response | TransportError] = []
        try:
            async with asyncio.timeout(timeout_secs):
                for request in requests:
                    try:
                        answers.append(await request.future)
                    except TransportError as error:
                        answers.append(error)
        except TimeoutError:
            late = TransportError("timeout", f"no answer within {timeout_secs}s")
            answers += self._after_deadline(requests[len(answers) :], late)
        except asyncio.CancelledError:
            for request in requests:  # the answers that come are dropped, unread by anyone
                request.future.cancel()
            raise
        return answers

    def _after_deadline(
        self, requests: list[_Request], late: TransportError
    ) -> list[Response | TransportError]:
        """Each request's answer if it came in time after all, else ``late``; the connections
        of those without one are closed (all are given up first, so none is sent again)."""
        unanswered = [r for r in requests if r.future.cancelled() or not r.future.done()]
        for request in unanswered:
            request.future.cancel()
        for request in unanswered:
            self._time_out(request, late)
        answers: list[Response | TransportError] = []
        for request in requests:
            future = request.future
            error = late if future.cancelled() else future.exception()
            answers.append(error if isinstance(error, TransportError) else future.result())
        return answers

    def close(self) -> None:
        """Close every connection; requests still unanswered fail as lost."""
        closed = TransportError("network", "the client was closed")
        while self._waiting:
            _fail(self._waiting.popleft(), closed)
        for connection in list(self._connections):
            self._drop(connection, closed)

    def tls(self) -> ssl.SSLContext | None:
        """The SSL context for https (made at the first connection: loading the CAs takes
        time a destination that never sends should not spend), None for http."""
        if self._https and self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context if self._https else None

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def _submit(self, request: _Request) -> None:
        connection = self._room()
        if connection is None:
            self._waiting.append(request)
        else:
            connection.write(request)

    def _room(self) -> _Connection | None:
        """The least busy usable connection, a new one while the busiest need company, or None."""
        best: _Connection | None = None
        for connection in self._connections:
            if not connection.retired and (
                best is None or len(connection.unanswered) < len(best.unanswered)
            ):
                best = connection
        if best is None or (best.unanswered and len(self._connections) < self.max_connections):
            best = _Connection(self)
            self._connections.append(best)
            best.open()
            return best
        return best if len(best.unanswered) < self.depth else None

    def _pump(self) -> None:
        """Give waiting requests the room that answers made."""
        while self._waiting:
            if self._waiting[0].future.done():  # given up (timed out, cancelled): not sent
                self._waiting.popleft()
                continue
            connection = self._room()
            if connection is None:
                return
            connection.write(self._waiting.popleft())

    def _time_out(self, request: _Request, late: TransportError) -> None:
        """``request`` waited too long: its connection, stuck behind it, is closed."""
        if request.connection is None:
            if request in self._waiting:
                self._waiting.remove(request)
        else:
            self._drop(request.connection, late)

    def _drop(self, connection: _Connection, error: TransportError) -> None:
        """Forget ``connection``: close it and fail what it left unanswered with ``error``."""
        if connection in self._connections:
            self._connections.remove(connection)
        for request in connection.hang_up():
            _fail(request, error)
        self._pump()

    def _resend(self, connection: _Connection) -> None:
        """``connection`` announced its close: what follows the close was never processed."""
        if connection in self._connections:
            self._connections.remove(connection)
        unprocessed = connection.hang_up()
        for request in unprocessed:
            request.connection = None
        self._waiting.extendleft(reversed(unprocessed))
        self._pump()


def _take_until(buffer: bytearray, end: bytes) -> bytes | None:
    """What precedes ``end`` (both taken off ``buffer``), or None until it has arrived."""
    at = buffer.find(end)
    if at < 0:
        if len(buffer) > MAX_HEAD:
            raise ValueError("head or chunk line too long")
        return None
    taken = bytes(buffer[:at])
    del buffer[: at + len(end)]
    return taken


def _fail(request: _Request, error: TransportError) -> None:
    if not request.future.done():
        request.future.set_exception(error)


class _Connection(asyncio.Protocol):
    """One kept-alive connection: writes requests as they come, parses answers in order."""

    def __init__(self, client: PipelinedClient) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.unanswered: deque[_Request] = deque()
        #: no new request goes here: it is closing, or closed
        self.retired = False
        self._opening: asyncio.Task[object] | None = None
        self._out: list[bytes] = []
        self._flush_soon = False
        self._idle: asyncio.TimerHandle | None = None
        self._buffer = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._status = 0
        self._body = bytearray()
        self._retry_after: str | None = None
        self._closes = False

    def open(self) -> None:
        self._opening = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        client = self.client
        tls = client.tls()
        try:
            await self.loop.create_connection(
                lambda: self,
                client.host,
                client.port,
                ssl=tls,
                server_hostname=client.host if tls else None,
            )
        except (OSError, ValueError) as error:  # refused, DNS, TLS (ssl.SSLError: an OSError)
            client._drop(self, TransportError("connect_failed", f"cannot connect: {error}"))

    def write(self, request: _Request) -> None:
        request.connection = self
        self.unanswered.append(request)
        self._out.append(request.data)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self.transport is not None and not self._flush_soon:
            self._flush_soon = True  # requests written in the same loop turn share one send
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if self.transport is not None and self._out and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def hang_up(self) -> list[_Request]:
        """Close (for good) and hand back the requests still waiting for an answer."""
        self.retired = True
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if self._idle is not None:
            self._idle.cancel()
        if self.transport is not None:
            self.transport.abort()
        left = list(self.unanswered)
        self.unanswered.clear()
        self._out.clear()
        return left

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's (the event loop `tagless serve` runs on) is no asyncio.Transport subclass
        transport = self.transport = cast(asyncio.Transport, transport)
        if self.retired:
            transport.abort()
        else:
            self._flush()

    def data_received(self, data: bytes) -> None:
        if self.retired:
            return
        self._buffer += data
        try:
            self._parse()
        except ValueError as error:
            self.client._drop(self, TransportError("network", f"unreadable answer: {error}"))

    def eof_received(self) -> bool | None:
        return None  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        by_peer = not self.retired
        self.retired = True
        if by_peer and self._state == _UNTIL_CLOSE and self.unanswered:
            self._answer()  # its body ended with the connection
        if by_peer:
            lost = "connection reset" if exc else "connection closed"
            self.client._drop(self, TransportError("network", f"{lost} before the answer"))

    # the answers

    def _parse(self) -> None:
        buffer = self._buffer
        while buffer and not self.retired:
            state = self._state
            if state == _HEAD:
                head = _take_until(buffer, b"\r\n\r\n")
                if head is None:
                    return
                self._start(head)
            elif state in (_LENGTH, _CHUNK_DATA):
                take = min(len(buffer), self._remaining)
                room = MAX_READ_BODY - len(self._body)
                if room > 0:
                    self._body += buffer[: min(take, room)]
                del buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    if state == _LENGTH:
                        self._answer()
                    else:
                        self._state = _CHUNK_END
            elif state == _UNTIL_CLOSE:
                room = MAX_READ_BODY - len(self._body)
                if room > 0:
                    self._body += buffer[:room]
                buffer.clear()
            else:
                line = _take_until(buffer, b"\r\n")
                if line is None:
                    return
                self._chunk_line(state, line)

    def _chunk_line(self, state: int, line: bytes) -> None:
        if state == _CHUNK_SIZE:
            size = int(line.split(b";", 1)[0].strip(), 16)  # ValueError: unreadable
            if size == 0:
                self._state = _TRAILERS
            else:
                self._state, self._remaining = _CHUNK_DATA, size
        elif state == _CHUNK_END:
            if line:
                raise ValueError("chunk not followed by CRLF")
            self._state = _CHUNK_SIZE
        elif not line:  # _TRAILERS: an empty line ends the answer
            self._answer()

    def _start(self, head: bytes) -> None:
        """Read a status line and headers; choose how the body ends."""
        status_line, *lines = head.split(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise ValueError("not an HTTP/1.x answer")
        status = int(rest[:3])
        if not self.unanswered:
            raise ValueError("an answer nobody asked for")
        if 100 <= status < 200:
            return  # an interim answer; the final one follows
        length: int | None = None
        chunked = False
        connection = b"close" if version == b"HTTP/1.0" else b""
        self._retry_after = None
        for line in lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.strip().lower().endswith(b"chunked")
            elif name == b"connection":
                connection = value.strip().lower()
            elif name == b"retry-after":
                self._retry_after = value.strip().decode("latin-1")
        self._status = status
        self._closes = b"close" in connection
        self._body = bytearray()
        if status in _NO_BODY or (length == 0 and not chunked):
            self._answer()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._state, self._remaining = _LENGTH, length
        else:
            self._state = _UNTIL_CLOSE

    def _answer(self) -> None:
        """The head request's answer is complete."""
        self._state = _HEAD
        request = self.unanswered.popleft()
        if not request.future.done():
            answer = Response(self._status, bytes(self._body), parse_retry_after(self._retry_after))
            request.future.set_result(answer)
        self._body = bytearray()
        if self._closes:
            self.client._resend(self)
        elif self.unanswered:
            self.client._pump()
        else:
            self.client._pump()
            if not self.unanswered and not self.retired:
                self._idle = self.loop.call_later(self.client.idle_secs, self._expire)

    def _expire(self) -> None:
        self._idle = None
        if not self.unanswered:
            self.client._drop(self, TransportError("network", "idle connection closed"))
