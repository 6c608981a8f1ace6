"""Server and sink processes, ports, local HTTP, readiness and CPU accounting."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import orjson
from common import (
    BENCH,
    LOGS,
    OTHER_LOAD_LIMIT_PCT,
    PYTHON,
    READY_TIMEOUT_S,
    ROOT,
    STOP_TIMEOUT_S,
    BenchError,
)


class Service:
    """A server process in its own process group; stopped (TERM, then KILL) on exit."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = LOGS / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        LOGS.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env={**os.environ, **(self.env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        self._signal(signal.SIGKILL)  # anything the leader left behind in its group

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU of every process in the group (all threads)."""
        return sum(cpu for _, pgrp, cpu in processes() if pgrp == self.pid)

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory so far (VmHWM), in MiB: the sum of its processes'
        (Tagless with ingest processes is several)."""
        return self._status_mb("VmHWM:")

    def rss_mb(self) -> float:
        """The server's resident memory now (VmRSS, summed over its processes), in MiB."""
        return self._status_mb("VmRSS:")

    def _status_mb(self, key: str) -> float:
        total, found = 0, False
        for pid in [pid for pid, pgrp, _ in processes() if pgrp == self.pid] or [self.pid]:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(key):
                        total, found = total + int(line.split()[1]), True
        return total / 1024 if found else float("nan")

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(url, timeout=1.0)[0] == 200:
                    return
            time.sleep(0.1)
        raise BenchError(f"{self.name} not ready at {url} after {READY_TIMEOUT_S:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(method: str, url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One plain-HTTP request to a local server; (status, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    return http_request("GET", url, timeout)


def http_post(url: str, timeout: float = 5.0) -> int:
    return http_request("POST", url, timeout)[0]


class Counter(Service):
    """A bench script serving ``/stats`` and ``/reset`` on a free port: the sink or a fake."""

    def __init__(self, name: str, script: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [PYTHON, str(BENCH / script), "--port", str(self.port), *args]
        super().__init__(name, argv)

    def stats(self) -> dict[str, Any]:
        status, body = http_get(f"{self.url}/stats")
        if status != 200:
            raise BenchError(f"{self.name} /stats answered {status}")
        result: dict[str, Any] = orjson.loads(body)
        return result

    def reset(self) -> None:
        if http_post(f"{self.url}/reset") != 200:
            raise BenchError(f"{self.name} /reset failed")


class Sink(Counter):
    """bench/sink.py, the webhook destination of every Tagless run."""

    def __init__(self) -> None:
        super().__init__("sink", "sink.py")

    def outage(self, on: bool) -> None:
        """Make ``/hook`` answer 503 (Retry-After 1) while ``on``."""
        if http_post(f"{self.url}/outage?on={int(on)}") != 200:
            raise BenchError("sink /outage failed")


class Fake(Counter):
    """bench/platforms.py serving one platform."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        super().__init__(f"fake-{platform}", "platforms.py", "--platform", platform)


def processes() -> Iterator[tuple[int, int, float]]:
    """(pid, process group, CPU seconds) of every user-space process (kernel threads left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it just exited
            continue
        pid, ppid, pgrp = int(stat.parent.name), int(fields[1]), int(fields[2])
        if pid != 2 and ppid != 2:  # kthreadd and its children
            yield pid, pgrp, (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def others_cpu(ours: set[int]) -> dict[int, float]:
    """CPU seconds of every process outside the process groups ``ours``, by pid."""
    return {pid: cpu for pid, pgrp, cpu in processes() if pgrp not in ours}


def other_pct(before: dict[int, float], after: dict[int, float], elapsed: float) -> float:
    """% of one core that unrelated processes used between two :func:`others_cpu` readings.

    A lower bound: a process that started and exited in between is not seen.
    """
    used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    return max(0.0, used) / elapsed * 100


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by the server and by processes that are not part of the bench."""

    at: float
    server: float
    others: dict[int, float]

    @classmethod
    def take(cls, server: Service, helpers: Sequence[Service] = ()) -> CpuSnapshot:
        ours = {os.getpgrp(), server.pid} | {helper.pid for helper in helpers}
        return cls(time.monotonic(), server.cpu_seconds(), others_cpu(ours))

    def percent_since(self, before: CpuSnapshot) -> tuple[float, float]:
        """(server %, unrelated processes %) of one core."""
        elapsed = self.at - before.at
        server = (self.server - before.server) / elapsed * 100
        return server, other_pct(before.others, self.others, elapsed)


def machine_busy_pct(seconds: float = 2.0) -> float:
    """How much CPU processes other than this one use right now, in % of one core."""
    ours = {os.getpgrp()}
    before, start = others_cpu(ours), time.monotonic()
    time.sleep(seconds)
    return other_pct(before, others_cpu(ours), time.monotonic() - start)


def wait_for_idle(seconds: float) -> None:
    """Wait (at most ``seconds``) until other processes use under OTHER_LOAD_LIMIT_PCT."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = machine_busy_pct()
        if busy < OTHER_LOAD_LIMIT_PCT:
            return
        print(f"waiting for an idle machine: {busy:.0f}% of one core busy", flush=True)
