"""Ingest in separate processes sharing the port (``server.ingest_processes``), supervised.

With ``ingest_processes: N`` the main process keeps delivery, the admin listener and outbox
maintenance, and starts N ingest processes (``python -m router.ingest_process``). Each binds
the ingest port with ``SO_REUSEPORT``, so the kernel spreads new connections over them, and
commits to the same outbox (SQLite serialises their group commits; each still answers only after
its own commit). The main process holds the port bound (not listening) from start to stop, so
port 0 resolves once and no other program takes the port while an ingest process restarts.

Each ingest process talks back over its socket pair (router/ingest_channel.py): readiness,
each commit (the main process wakes those lanes at once and counts the backlog), and its
counters for ``/metrics``. One that exits while Tagless is not stopping is started again after
a pause that doubles up to ``RESTART_MAX_SECS``; its connections' clients retry (their events
were not acknowledged) and the others never notice.

The main process may give delivery a lower CPU priority (``server.delivery_nice``): ingest
answers the store's checkout, delivery can wait. Linux keeps a nice value per thread, and a
thread or child inherits its creator's, so ingest processes are started from a thread made
before the main thread lowers its own priority: they run at the priority Tagless was started
with. So does the outbox's writer thread, made before too: ingest processes wait for the lock
its commits hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import structlog

from router.config import ServerConfig
from router.ingest_channel import decode_added, receive
from router.metrics import Metrics
from router.outbox.writer import Added
from router.startup import StartupError, listen_failure

log = structlog.get_logger("tagless.ingest_pool")

#: How long an ingest process may take to start listening.
READY_TIMEOUT_SECS: Final = 60.0
RESTART_INITIAL_SECS: Final = 0.5
RESTART_MAX_SECS: Final = 30.0
#: Beyond the shutdown grace, how long a stopping ingest process may take before it is killed.
STOP_MARGIN_SECS: Final = 5.0


@attrs.define(eq=False)
class _Process:
    number: int
    #: Unique per start (a restart gets a new one): the key of its counters in Metrics.peers.
    serial: int
    proc: subprocess.Popen[bytes]
    sock: socket.socket
    ready: asyncio.Future[None]
    exited: asyncio.Event = attrs.Factory(asyncio.Event)


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


class IngestPool:
    """The ingest processes of one Tagless: start, restart, reload and stop them."""

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
        self.config_dir = config_dir
        self.server = server
        self.count = count
        self.metrics = metrics
        self.on_commit = on_commit
        self.json_logs = json_logs
        self.port = 0
        self.stopping = False
        self.processes: dict[int, _Process] = {}
        self._serials = iter(range(1, sys.maxsize))
        self._reserved: socket.socket | None = None
        self._restarts: set[asyncio.Task[None]] = set()
        # made now, before the main thread may lower its priority (see the module's docstring)
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="tagless-spawn")
        self._spawner.submit(lambda: None).result()

    @property
    def serving(self) -> bool:
        """At least one ingest process listens, and the pool is not stopping."""
        return not self.stopping and any(
            p.ready.done() and not p.ready.exception() and not p.exited.is_set()
            for p in self.processes.values()
        )

    async def start(self) -> int:
        """Start every ingest process and wait until each listens; return the port.

        :class:`StartupError` if one exits or stays silent first (its own log says why).
        """
        self._reserved = reserve_port(self.server.host, self.server.port)
        self.port = int(self._reserved.getsockname()[1])
        for number in range(1, self.count + 1):
            await self._spawn(number)
        for process in list(self.processes.values()):
            try:
                await asyncio.wait_for(asyncio.shield(process.ready), READY_TIMEOUT_SECS)
            except (TimeoutError, StartupError) as error:
                raise StartupError(
                    f"ingest process {process.number} did not start: "
                    f"{error or f'not listening after {READY_TIMEOUT_SECS:g} s'}"
                    " (its log above says why)"
                ) from None
        return self.port

    async def _spawn(self, number: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [
            sys.executable,
            "-m",
            "router.ingest_process",
            "--config",
            str(self.config_dir),
            "--port",
            str(self.port),
            "--channel-fd",
            str(theirs.fileno()),
            "--number",
            str(number),
            *(["--json"] if self.json_logs else []),
        ]
        loop = asyncio.get_running_loop()
        try:
            proc = await loop.run_in_executor(
                self._spawner,
                lambda: subprocess.Popen(command, pass_fds=(theirs.fileno(),)),  # noqa: S603
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        process = _Process(number, next(self._serials), proc, ours, loop.create_future())
        self.processes[number] = process
        loop.add_reader(ours.fileno(), self._readable, process)
        log.info("ingest_process_started", number=number, pid=proc.pid)

    def _readable(self, process: _Process) -> None:
        while (data := receive(process.sock)) is not None:
            if not data:
                self._lost(process)
                return
            self._heard(process, orjson.loads(data))

    def _heard(self, process: _Process, message: dict[str, Any]) -> None:
        if "committed" in message:
            self.on_commit(decode_added(message["committed"]))
        elif "counts" in message:
            self.metrics.absorb(process.serial, message["counts"])
        elif "ready" in message and not process.ready.done():
            process.ready.set_result(None)

    def _lost(self, process: _Process) -> None:
        """The process closed its end: it exited (or is exiting). Reap it, maybe restart it."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(process.sock.fileno())
        process.sock.close()
        task = loop.create_task(self._reap(process), name=f"ingest-reap-{process.number}")
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _reap(self, process: _Process) -> None:
        loop = asyncio.get_running_loop()
        status = await loop.run_in_executor(self._spawner, process.proc.wait)
        process.exited.set()
        if not process.ready.done():
            process.ready.set_exception(StartupError(f"it exited with status {status}"))
            process.ready.exception()  # retrieved: start() reports it, or nobody waits
            return
        if self.stopping:
            log.info("ingest_process_stopped", number=process.number, status=status)
            return
        pause = RESTART_INITIAL_SECS
        while not self.stopping:
            log.error(
                "ingest_process_exited", number=process.number, status=status, restart_in=pause
            )
            await asyncio.sleep(pause)
            if self.stopping:
                return
            await self._spawn(process.number)
            fresh = self.processes[process.number]
            with contextlib.suppress(StartupError):
                await asyncio.wait_for(asyncio.shield(fresh.ready), READY_TIMEOUT_SECS)
                return  # it serves; its own exit, later, is reaped by its own _lost
            if not fresh.exited.is_set():
                return  # slow but alive: leave it be
            status = fresh.proc.returncode
            pause = min(pause * 2, RESTART_MAX_SECS)

    def reload(self) -> None:
        """Tell every ingest process to read the config again (SIGHUP)."""
        for process in self.processes.values():
            if process.proc.poll() is None:
                process.proc.send_signal(signal.SIGHUP)

    async def stop(self, grace: float) -> None:
        """SIGTERM every ingest process (each finishes its requests and commits within
        ``grace``), kill whichever is still there ``STOP_MARGIN_SECS`` later, release the port."""
        self.stopping = True
        processes = list(self.processes.values())
        for process in processes:
            if process.proc.poll() is None:
                process.proc.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.exited.wait()) for p in processes]
        if waits:
            _, late = await asyncio.wait(waits, timeout=grace + STOP_MARGIN_SECS)
            for task in late:
                task.cancel()
        for process in processes:
            if process.proc.poll() is None:
                log.error("ingest_process_killed", number=process.number, after_secs=grace)
                process.proc.kill()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        for process in processes:  # a process that never said anything is reaped here
            with contextlib.suppress(OSError, ValueError):
                asyncio.get_running_loop().remove_reader(process.sock.fileno())
                process.sock.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(timeout=1.0)
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        self._spawner.shutdown(wait=False)


def lower_priority(nice: int) -> None:
    """Lower this thread's CPU priority by ``nice`` (threads it starts later inherit it)."""
    if nice > 0:
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + nice)
