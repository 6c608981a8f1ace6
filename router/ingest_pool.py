"""Ingest in separate processes sharing the port (``server.ingest_processes``), supervised.

With ``ingest_processes: N`` the main process keeps delivery (unless delivery processes take
it: router/delivery_pool.py), the admin listener and outbox maintenance, and starts N ingest
processes (``python -m router.ingest_process``). Each binds the ingest port with
``SO_REUSEPORT``, so the kernel spreads new connections over them, and commits to the same
outbox (SQLite serialises their group commits; each still answers only after its own commit).
The main process holds the port bound (not listening) from start to stop, so port 0 resolves
once and no other program takes the port while an ingest process restarts.

Each ingest process talks back over its channel (router/ingest_channel.py): readiness, each
commit (the main process wakes those lanes at once and counts the backlog), and its counters
for ``/metrics``. One that exits is started again (router/process_pool.py); its connections'
clients retry (their events were not acknowledged) and the others never notice.

The main process may give delivery a lower CPU priority (``server.delivery_nice``): ingest
answers the store's checkout, delivery can wait. Ingest processes start at the priority
Tagless was started with (router/process_pool.py), and so does the outbox's writer thread,
made before the main thread lowers its own: ingest processes wait for the lock its commits
hold.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.config import ServerConfig
from router.ingest_channel import decode_added
from router.metrics import Metrics
from router.outbox.writer import Added
from router.process_pool import Child, ProcessPool
from router.startup import listen_failure


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` with ``SO_REUSEPORT`` without listening: the ingest processes bind
    it too; this socket only holds it (and resolves port 0)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise listen_failure("server", host, port, error) from error
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise listen_failure("server", host, port, error) from error
    return sock


class IngestPool(ProcessPool):
    """The ingest processes of one Tagless: start, restart, reload and stop them."""

    kind = "ingest"
    module = "router.ingest_process"

    def __init__(
        self,
        *,
        config_dir: Path,
        server: ServerConfig,
        count: int,
        metrics: Metrics,
        on_commit: Callable[[Added], None],
        json_logs: bool,
    ) -> None:
        super().__init__(config_dir=config_dir, count=count, metrics=metrics, json_logs=json_logs)
        self.server = server
        self.on_commit = on_commit
        self.port = 0
        self._reserved: socket.socket | None = None

    async def start(self) -> int:
        """Start every ingest process and wait until each listens; return the port."""
        self._reserved = reserve_port(self.server.host, self.server.port)
        self.port = int(self._reserved.getsockname()[1])
        await self.start_all()
        return self.port

    def arguments(self, number: int) -> list[str]:
        return ["--port", str(self.port)]

    def heard(self, process: Child, message: dict[str, Any]) -> None:
        if "committed" in message:
            self.on_commit(decode_added(message["committed"]))

    def reload(self) -> None:
        """Tell every ingest process to read the config again (SIGHUP)."""
        self.signal_all(signal.SIGHUP)

    async def stop(self, grace: float) -> None:
        """Stop every ingest process (each finishes its requests and commits within
        ``grace``), then release the port."""
        await super().stop(grace)
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
