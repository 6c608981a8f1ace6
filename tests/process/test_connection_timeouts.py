"""Connections that stop talking are closed: no headers, half the headers, no body, idle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from harness import EVENT, error_of, request_head, status_of, stored_event_ids

from router.testing.server import RunningTagless

#: Small deadlines so the tests are quick; MARGIN absorbs a loaded machine.
HEADER_SECS = 0.5
BODY_SECS = 0.6
KEEPALIVE_SECS = 0.7
MARGIN_SECS = 4.0
TIMEOUTS = {
    "header_timeout_secs": HEADER_SECS,
    "body_timeout_secs": BODY_SECS,
    "keepalive_timeout_secs": KEEPALIVE_SECS,
}
Start = Callable[..., Awaitable[RunningTagless]]


async def until_closed(port: int, *parts: bytes, pause: float = 0.0) -> tuple[float, bytes]:
    """Connect, send ``parts`` (``pause`` s apart), read until the server closes the
    connection; return the seconds from connecting to the close, and what was answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()
    try:
        for index, part in enumerate(parts):
            if index and pause:
                await asyncio.sleep(pause)
            writer.write(part)
        answer = await asyncio.wait_for(reader.read(), MARGIN_SECS + 5)
        return time.monotonic() - opened, answer
    finally:
        writer.close()


async def test_a_silent_connection_is_closed_after_the_header_timeout(in_process: Start) -> None:
    """A client that connects and sends nothing is hung up on once the header deadline passes."""
    tagless = await in_process(**TIMEOUTS)
    took, answer = await until_closed(tagless.app.ports["ingest"])
    assert answer == b""
    assert HEADER_SECS <= took < HEADER_SECS + MARGIN_SECS


async def test_half_sent_headers_are_answered_408_and_closed(in_process: Start) -> None:
    """Headers that stop half-way get a JSON 408 and the close, at the header deadline."""
    tagless = await in_process(**TIMEOUTS)
    took, answer = await until_closed(tagless.app.ports["ingest"], request_head(10)[:40])
    assert status_of(answer) == 408
    assert error_of(answer)["code"] == "request_timeout"
    assert HEADER_SECS <= took < HEADER_SECS + MARGIN_SECS


async def test_a_declared_body_never_sent_is_answered_408_and_closed(in_process: Start) -> None:
    """A request whose body never arrives gets a JSON 408 at the body deadline; nothing stored."""
    tagless = await in_process(**TIMEOUTS)
    took, answer = await until_closed(
        tagless.app.ports["ingest"], request_head(len(EVENT)) + EVENT[:5]
    )
    assert status_of(answer) == 408
    assert "body" in error_of(answer)["message"]
    assert BODY_SECS <= took < BODY_SECS + MARGIN_SECS
    assert not stored_event_ids(tagless.app.config.outbox.path)


async def test_an_idle_keepalive_connection_is_closed_after_the_keepalive_timeout(
    in_process: Start,
) -> None:
    """After its answer, a keep-alive connection left idle is closed at the keep-alive deadline."""
    tagless = await in_process(**TIMEOUTS)
    took, answer = await until_closed(
        tagless.app.ports["ingest"], b"GET /healthz HTTP/1.1\r\nHost: tagless\r\n\r\n"
    )
    assert status_of(answer) == 200
    assert KEEPALIVE_SECS <= took < KEEPALIVE_SECS + MARGIN_SECS


async def test_a_slow_request_within_its_deadlines_is_served(in_process: Start) -> None:
    """Headers and a body that arrive in pieces, each within its deadline, are answered 200."""
    tagless = await in_process(
        header_timeout_secs=3.0, body_timeout_secs=3.0, keepalive_timeout_secs=0.5
    )
    request = request_head(len(EVENT)) + EVENT
    parts = [request[:30], request[30:-10], request[-10:]]
    _took, answer = await until_closed(tagless.app.ports["ingest"], *parts, pause=0.3)
    assert status_of(answer) == 200, answer


async def test_the_admin_listener_has_the_same_deadlines(in_process: Start) -> None:
    """The admin listener closes a silent connection at the header deadline too."""
    tagless = await in_process(**TIMEOUTS)
    took, answer = await until_closed(tagless.app.ports["admin"])
    assert answer == b""
    assert took < HEADER_SECS + MARGIN_SECS
