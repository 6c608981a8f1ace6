"""Child processes of the main one (ingest or delivery), supervised: start, restart, stop.

Each child is ``python -m <module>`` started by the main process, never by hand, with its end
of a channel (router/ingest_channel.py): it says ``ready``, sends its counters every second
(added to ``/metrics`` here) and maybe more that a subclass hears. One that exits while
Tagless is not stopping is started again after a pause that doubles up to
``RESTART_MAX_SECS``.

Linux keeps a nice value per thread, and a thread or child inherits its creator's: children
are started from a thread made before the main thread may lower its own priority
(``server.delivery_nice``, ``server.delivery_idle``), so they start at the priority Tagless was
started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Final

import attrs
import structlog

from router.config.model import MAX_NICE
from router.ingest_channel import Channel
from router.metrics import Metrics
from router.startup import StartupError

log = structlog.get_logger("tagless.process_pool")

#: How long a child may take to say it is ready.
READY_TIMEOUT_SECS: Final = 60.0
RESTART_INITIAL_SECS: Final = 0.5
RESTART_MAX_SECS: Final = 30.0
#: Beyond the shutdown grace, how long a stopping child may take before it is killed.
STOP_MARGIN_SECS: Final = 5.0

#: Serial numbers of children, unique across the pools of this process (Metrics.peers keys).
_serials: Final = itertools.count(1)


@attrs.define(eq=False)
class Child:
    number: int
    #: Unique per start (a restart gets a new one): the key of its counters in Metrics.peers.
    serial: int
    proc: subprocess.Popen[bytes]
    channel: Channel
    ready: asyncio.Future[None]
    exited: asyncio.Event = attrs.Factory(asyncio.Event)


class ProcessPool:
    """``count`` children running ``module``: start, restart, signal and stop them."""

    #: What the children are, in log events (``<kind>_process_started``...) and messages.
    kind: ClassVar[str]
    module: ClassVar[str]

    def __init__(self, *, config_dir: Path, count: int, metrics: Metrics, json_logs: bool) -> None:
        self.config_dir = config_dir
        self.count = count
        self.metrics = metrics
        self.json_logs = json_logs
        self.stopping = False
        self.processes: dict[int, Child] = {}
        self._restarts: set[asyncio.Task[None]] = set()
        #: Counts stop_all() calls: a restart begun before one does not start its child.
        self._generation = 0
        metrics.children[self.kind] = self.running
        # made now, before the main thread may lower its priority (see the module's docstring)
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix=f"tagless-{self.kind}-spawn")
        self._spawner.submit(lambda: None).result()

    @property
    def serving(self) -> bool:
        """At least one child is ready and alive, and the pool is not stopping."""
        return not self.stopping and self.running() > 0

    def running(self) -> int:
        """Children ready and alive."""
        return sum(
            p.ready.done() and not p.ready.exception() and not p.exited.is_set()
            for p in self.processes.values()
        )

    def arguments(self, number: int) -> list[str]:
        """Child ``number``'s own command-line arguments, beyond the config and channel."""
        return []

    def heard(self, process: Child, message: dict[str, Any]) -> None:
        """A message from ``process`` other than ``counts`` and ``ready``."""

    async def start_all(self) -> None:
        """Start every child and wait until each is ready.

        :class:`StartupError` if one exits or stays silent first (its own log says why).
        """
        for number in range(1, self.count + 1):
            await self._spawn(number)
        for process in list(self.processes.values()):
            try:
                await asyncio.wait_for(asyncio.shield(process.ready), READY_TIMEOUT_SECS)
            except (TimeoutError, StartupError) as error:
                raise StartupError(
                    f"{self.kind} process {process.number} did not start: "
                    f"{error or f'not ready after {READY_TIMEOUT_SECS:g} s'}"
                    " (its log above says why)"
                ) from None

    async def _spawn(self, number: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [
            sys.executable,
            "-m",
            self.module,
            "--config",
            str(self.config_dir),
            "--channel-fd",
            str(theirs.fileno()),
            "--number",
            str(number),
            *self.arguments(number),
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
        holder: list[Child] = []
        channel = Channel(
            ours, lambda: self._lost(holder[0]), lambda message: self._heard(holder[0], message)
        )
        process = Child(number, next(_serials), proc, channel, loop.create_future())
        holder.append(process)
        self.processes[number] = process
        log.info(f"{self.kind}_process_started", number=number, pid=proc.pid)

    def _heard(self, process: Child, message: dict[str, Any]) -> None:
        if "counts" in message:
            self.metrics.absorb(process.serial, message["counts"])
        elif "ready" in message:
            if not process.ready.done():
                process.ready.set_result(None)
        else:
            self.heard(process, message)

    def _lost(self, process: Child) -> None:
        """The child closed its end: it exited (or is exiting). Reap it, maybe restart it."""
        task = asyncio.get_running_loop().create_task(
            self._reap(process), name=f"{self.kind}-reap-{process.number}"
        )
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _reap(self, process: Child) -> None:
        loop = asyncio.get_running_loop()
        status = await loop.run_in_executor(self._spawner, process.proc.wait)
        process.exited.set()
        self.metrics.retire(process.serial)
        if not process.ready.done():
            process.ready.set_exception(StartupError(f"it exited with status {status}"))
            process.ready.exception()  # retrieved: start_all() reports it, or nobody waits
            return
        if self.stopping or self.processes.get(process.number) is not process:
            log.info(f"{self.kind}_process_stopped", number=process.number, status=status)
            return
        pause, generation = RESTART_INITIAL_SECS, self._generation
        while not self.stopping and generation == self._generation:
            log.error(
                f"{self.kind}_process_exited",
                number=process.number,
                status=status,
                restart_in=pause,
            )
            await asyncio.sleep(pause)
            if self.stopping or generation != self._generation:
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

    def broadcast(self, message: dict[str, Any], *, coalesce: str | None = None) -> None:
        """Send ``message`` to every running child (queued while a channel is full; see
        :meth:`Channel.send` for ``coalesce``)."""
        for process in self.processes.values():
            if not process.exited.is_set():
                process.channel.send(message, coalesce=coalesce)

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every running child."""
        for process in self.processes.values():
            if process.proc.poll() is None:
                process.proc.send_signal(signum)

    async def stop_all(self, grace: float) -> None:
        """SIGTERM every child (each finishes its work within ``grace``), kill whichever is
        still there ``STOP_MARGIN_SECS`` later. None is started again: they leave the pool."""
        self._generation += 1  # a restart under way gives up (or its child is stopped here)
        while self.processes or self._restarts:
            processes = list(self.processes.values())
            self.processes.clear()
            await self._terminate(processes, grace)
            await asyncio.gather(*self._restarts, return_exceptions=True)

    async def _terminate(self, processes: list[Child], grace: float) -> None:
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
                log.error(f"{self.kind}_process_killed", number=process.number, after_secs=grace)
                process.proc.kill()
        for process in processes:  # a process that never said anything is reaped here
            process.channel.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(timeout=1.0)

    async def stop(self, grace: float) -> None:
        """Stop every child for good."""
        self.stopping = True
        await self.stop_all(grace)
        self._spawner.shutdown(wait=False)


def lower_priority(nice: int, *, idle: bool = False) -> None:
    """Lower this thread's CPU priority by ``nice``, or with ``idle`` to Linux's SCHED_IDLE
    policy (threads it starts later inherit either).

    A SCHED_IDLE thread runs only on a CPU nothing else wants, and a waking thread of the
    normal policy takes its CPU at once; a niced one may first finish its time slice, which
    an acknowledgement waits for. Where the policy is missing, the lowest nice stands in.
    """
    if idle:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except (AttributeError, OSError) as error:
            log.warning("sched_idle_unavailable", error=str(error), instead=f"nice {MAX_NICE}")
            nice = MAX_NICE
    if nice > 0:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, min(current + nice, MAX_NICE))
