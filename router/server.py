"""The HTTP listeners: header, body and keep-alive deadlines per connection, and a connection cap.

aiohttp closes idle keep-alive connections itself (``keepalive_timeout``) but has no deadline
for a request's headers or body: a client that connects and stays silent, sends half its
headers, or declares a body and never sends it holds a file descriptor forever. Each
connection here is an aiohttp ``RequestHandler`` with one extra timer: armed for the headers
when the connection opens (or when the first bytes of its next request arrive), re-armed for
the body once the headers are in, cancelled once the body is complete.

The cap keeps the process below its open-file limit: at the cap, a new connection closes the
connection that has been idle longest (waiting for headers, or between keep-alive requests);
if every connection is busy with a request, the new one is closed at once. Requests in
flight are never cut off to make room.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any, Final

import attrs
import structlog
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from router.config import ServerConfig
from router.ingest.errors import IngestError
from router.startup import StartupError

log = structlog.get_logger("tagless.server")

#: File descriptors kept free of ingest connections: the process itself (stdio, event loop,
#: listeners, the outbox's database, WAL and shared-memory files on two connections, file
#: destinations), the outbound HTTP pool (``HttpClient.create``'s 64), and the admin listener.
RESERVED_FILES: Final = 64
OUTBOUND_POOL: Final = 64
ADMIN_MAX_CONNECTIONS: Final = 32
HEADROOM: Final = RESERVED_FILES + OUTBOUND_POOL + ADMIN_MAX_CONNECTIONS
#: The derived default never exceeds this, however high the open-file limit.
DEFAULT_MAX_CONNECTIONS_CEILING: Final = 10_000
#: How often, at most, the cap logs that it shed connections.
SHED_LOG_EVERY_SECS: Final = 60.0


@attrs.frozen(kw_only=True)
class ConnectionLimits:
    """The deadlines and the cap of one listener."""

    header_timeout_secs: float
    body_timeout_secs: float
    keepalive_timeout_secs: float
    max_connections: int


def open_file_limit() -> int:
    """This process's soft limit on open files (RLIMIT_NOFILE)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return DEFAULT_MAX_CONNECTIONS_CEILING + HEADROOM if soft == resource.RLIM_INFINITY else soft


def allowed_connections(files: int) -> int:
    """Ingest connections that fit under ``files`` open files with the headroom kept free."""
    return max(files - HEADROOM, files // 2)


def ingest_limits(config: ServerConfig, files: int | None = None) -> ConnectionLimits:
    """The ingest listener's limits; a ``max_connections`` the file limit cannot hold is refused."""
    files = open_file_limit() if files is None else files
    allowed = allowed_connections(files)
    if config.max_connections is None:
        cap = min(allowed, DEFAULT_MAX_CONNECTIONS_CEILING)
    elif config.max_connections > allowed:
        raise StartupError(
            f"server.max_connections is {config.max_connections} but the open-file limit of"
            f" {files} leaves room for {allowed} (Tagless keeps {HEADROOM} files for the outbox,"
            " outbound HTTP and the admin listener); raise the limit (ulimit -n, systemd"
            " LimitNOFILE) or lower server.max_connections"
        )
    else:
        cap = config.max_connections
    return ConnectionLimits(
        header_timeout_secs=config.header_timeout_secs,
        body_timeout_secs=config.body_timeout_secs,
        keepalive_timeout_secs=config.keepalive_timeout_secs,
        max_connections=cap,
    )


def admin_limits(ingest: ConnectionLimits) -> ConnectionLimits:
    """The admin listener: the same deadlines, its own small cap (inside the headroom)."""
    return attrs.evolve(ingest, max_connections=ADMIN_MAX_CONNECTIONS)


def _timeout_error(what: str, secs: float) -> IngestError:
    return IngestError(408, "request_timeout", f"{what} did not arrive within {secs:g} s")


def _raw_408(what: str, secs: float) -> bytes:
    """A whole 408 response, written straight to the socket when no handler is running."""
    body = _timeout_error(what, secs).response().body
    assert isinstance(body, bytes)
    head = (
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHandler(RequestHandler):
    """aiohttp's HTTP/1.1 protocol with a deadline for each request's headers and body.

    Reads aiohttp internals of the installed version (``_request_count``, ``_messages``,
    ``_request_in_progress``, ``_close``, ``_force_close``); tests/process/test_connection_*.py
    fail if they change meaning.
    """

    __slots__ = ("_body", "_deadline", "_guard", "_partial")

    def __init__(self, guard: GuardedServer, **kwargs: Any) -> None:
        super().__init__(guard, **kwargs)
        self._guard = guard
        self._deadline: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        self._partial = False  # bytes of a request head arrived, not the whole head

    @property
    def idle(self) -> bool:
        """No request is being read, queued or handled: only headers are awaited."""
        return not (self._request_in_progress or self._messages or self._body is not None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # the guard may refuse the connection in there
        if not self._force_close:
            self._arm(self._guard.limits.header_timeout_secs, self._headers_late)

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._force_close or self._close:
            return
        if self._request_count != heads:  # one or more request heads are complete
            self._partial = False
            self._disarm()
            self._guard.touch(self)
            payload = self._messages[-1][1] if self._messages else None
            if payload is not None and not payload.is_eof():
                self._body = payload
                self._arm(self._guard.limits.body_timeout_secs, self._body_late)
        elif self._body is not None:
            if self._body.is_eof():
                self._body = None
                self._disarm()
        elif data and self.idle:
            self._partial = True
            if self._deadline is None:
                self._arm(self._guard.limits.header_timeout_secs, self._headers_late)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._body = None
        super().connection_lost(exc)

    def _arm(self, secs: float, late: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self._loop.call_later(secs, late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.transport is None or self._force_close or not self.idle:
            return
        secs = self._guard.limits.header_timeout_secs
        if self._partial:  # a client that started a request gets told why it ends
            self.transport.write(_raw_408("the request headers", secs))
        self._guard.timed_out("headers" if self._partial else "idle")
        self.force_close()

    def _body_late(self) -> None:
        self._deadline = None
        payload, self._body = self._body, None
        if payload is None or payload.is_eof() or self.transport is None:
            return
        self._guard.timed_out("body")
        self.close()  # read nothing more; hang up once the request below is answered
        if self._request_in_progress or self._messages:
            secs = self._guard.limits.body_timeout_secs
            answer = _timeout_error("the request body", secs).response().text
            # the handler's read raises this, and aiohttp sends it as the answer
            payload.set_exception(
                web.HTTPRequestTimeout(text=answer, content_type="application/json")
            )
            payload.feed_eof()
        else:  # answered already and only draining the rest: nothing to say
            self.force_close()


class GuardedServer(web.Server):
    """aiohttp's connection manager, making :class:`GuardedHandler` connections under a cap."""

    def __init__(self, base: web.Server, limits: ConnectionLimits, name: str) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        self.limits = limits
        self.name = name
        #: Open connections, least recently active first.
        self.live: OrderedDict[GuardedHandler, None] = OrderedDict()
        self.shed: Counter[str] = Counter()
        self._shed_logged_at: float | None = None

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        assert isinstance(handler, GuardedHandler)
        self.live[handler] = None
        if len(self.live) > self.limits.max_connections:
            idle = next((h for h in self.live if h is not handler and h.idle), None)
            self._close(idle or handler, "idle_closed" if idle else "refused")

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.live.pop(handler, None)  # type: ignore[call-overload]

    def touch(self, handler: GuardedHandler) -> None:
        """``handler`` started a request: it becomes the last to be closed for room."""
        if handler in self.live:
            self.live.move_to_end(handler)

    def timed_out(self, phase: str) -> None:
        log.debug("connection_timeout", listener=self.name, phase=phase)

    def _close(self, handler: GuardedHandler, why: str) -> None:
        self.live.pop(handler, None)
        handler.force_close()
        self.shed[why] += 1
        now = self._loop.time()
        if self._shed_logged_at is None or now - self._shed_logged_at >= SHED_LOG_EVERY_SECS:
            self._shed_logged_at = now
            log.warning(
                "connection_limit_reached",
                listener=self.name,
                max_connections=self.limits.max_connections,
                **self.shed,
            )
            self.shed.clear()


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are :class:`GuardedHandler` under ``limits``."""

    def __init__(
        self, app: web.Application, limits: ConnectionLimits, name: str, **kwargs: Any
    ) -> None:
        super().__init__(app, keepalive_timeout=limits.keepalive_timeout_secs, **kwargs)
        self.limits = limits
        self.name = name

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self.limits, self.name)
