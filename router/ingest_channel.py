"""The channel between the main process and a child process: commits, counts, readiness.

One ``AF_UNIX`` ``SOCK_SEQPACKET`` socket pair per child (router/process_pool.py makes it):
every message is one orjson document, and the pair's end-of-file tells each side the other is
gone. A child says it is ``ready`` (an ingest process: its listener is up; a delivery process:
its lanes run) and sends its counters every second (``counts``), for ``/metrics``. An ingest
process tells of its group commits (``committed``: events by store and routes, gathered over
a few milliseconds, so the main process counts its backlog without a query and wakes the
lanes); the main process tells its
delivery processes of every store whose lanes it would wake (``wake``: commits, replays).

A message that does not fit the socket's buffer right now waits in a queue and goes when it
drains: none is dropped while the other side lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Final

import orjson
import structlog

from router.outbox.writer import Added

log = structlog.get_logger("tagless.ingest_channel")

#: The largest message either side reads: a group commit's counts by (store, routes) are small.
MAX_MESSAGE: Final = 1 << 20
#: How long an ingest process gathers its commits' counts into one ``committed`` message: a
#: message per commit cost its event loop 2.5% of its time under single-event load (a send
#: and an orjson document each, measured with py-spy), and the main process the same again.
#: Delivery hears of new events this much later at most.
COMMITTED_EVERY_SECS: Final = 0.002


def encode_added(added: Added) -> list[list[Any]]:
    """A commit's counts as JSON rows: ``[store, [routes...], events]``."""
    return [[store, list(routes), count] for (store, routes), count in added.items()]


def decode_added(rows: list[list[Any]]) -> Added:
    """The counts :func:`encode_added` wrote."""
    added: Added = Counter()
    for store, routes, count in rows:
        added[(str(store), tuple(str(route) for route in routes))] += int(count)
    return added


def receive(sock: socket.socket) -> bytes | None:
    """The next message on a non-blocking channel end; ``b""`` once the other side is gone
    (or the socket failed); None while nothing is waiting."""
    try:
        return sock.recv(MAX_MESSAGE)
    except BlockingIOError:
        return None
    except OSError:
        return b""


class Channel:
    """One end of a channel: sends in order, never blocks its event loop; each message read
    goes to ``on_message`` (without one, the other side is expected never to write)."""

    def __init__(
        self,
        sock: socket.socket,
        on_lost: Callable[[], None],
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        #: Messages not sent yet, each with its coalescing key (or None)
        self._queue: deque[tuple[str | None, bytes]] = deque()
        #: The keys of queued messages: another with the same key adds nothing
        self._queued_keys: set[str] = set()
        self._on_lost = on_lost
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._closed = False
        #: Commits' counts not told yet, and the timer that tells them (see ``committed``)
        self._committed: Added = Counter()
        self._committed_timer: asyncio.TimerHandle | None = None
        self._loop.add_reader(sock.fileno(), self._readable)

    def send(self, message: dict[str, Any], *, coalesce: str | None = None) -> None:
        """Send ``message`` now, or as soon as the socket takes it; with ``coalesce``, not if
        a message of that key still waits to go (a wake-up: the one waiting does the same)."""
        if self._closed or coalesce in self._queued_keys:
            return
        self._queue.append((coalesce, orjson.dumps(message)))
        if coalesce is not None:
            self._queued_keys.add(coalesce)
        if len(self._queue) == 1:
            self._flush()

    @property
    def waiting(self) -> int:
        """Messages queued until the socket takes them."""
        return len(self._queue)

    def committed(self, added: Added) -> None:
        """Tell the other side of a commit (an ingest process's ``commit_observer``), in one
        message with the other commits of the next ``COMMITTED_EVERY_SECS``."""
        self._committed.update(added)
        if self._committed_timer is None and not self._closed:
            self._committed_timer = self._loop.call_later(
                COMMITTED_EVERY_SECS, self._send_committed
            )

    def _send_committed(self) -> None:
        self._committed_timer = None
        if self._committed:
            added, self._committed = self._committed, Counter()
            self.send({"committed": encode_added(added)})

    def _flush(self) -> None:
        while self._queue:
            key, data = self._queue[0]
            try:
                self.sock.send(data)
            except BlockingIOError:
                self._loop.add_writer(self.sock.fileno(), self._writable)
                return
            except OSError:  # the other side is gone: _readable hears it too
                self._queue.clear()
                self._queued_keys.clear()
                return
            self._queue.popleft()
            if key is not None:
                self._queued_keys.discard(key)

    def _writable(self) -> None:
        self._loop.remove_writer(self.sock.fileno())
        self._flush()

    def _readable(self) -> None:
        while (data := receive(self.sock)) is not None:
            if not data:  # end of file: the other side is gone
                self.close()
                self._on_lost()
                return
            if self._on_message is not None:
                self._on_message(orjson.loads(data))

    def close(self) -> None:
        """Send what is still queued (waiting up to a second), then close."""
        if self._closed:
            return
        if self._committed_timer is not None:
            self._committed_timer.cancel()
        self._send_committed()
        self._closed = True
        self._loop.remove_reader(self.sock.fileno())
        self._loop.remove_writer(self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.settimeout(1.0)
            for _, data in self._queue:
                self.sock.send(data)
        self.sock.close()
