"""Runs `tagless serve` as a child process and checks its outbox, for process-level tests.

Everything here talks to 127.0.0.1 only. Every wait is bounded. Every process started here
runs in its own process group and is SIGKILLed by :meth:`TaglessServer.cleanup` (the
``tagless`` fixture calls it, whatever the test's outcome) or, as a last resort, at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

WRITE_KEY = "shop-key"
ADMIN_TOKEN = "test-admin-token"
#: Basic auth with the write key as username (the Segment convention).
AUTHORIZATION = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
STARTUP_TIMEOUT_SECS = 15.0
KILL_WAIT_SECS = 5.0

#: Processes started and not yet reaped; killed at interpreter exit if a test leaked one.
_LIVE: set[subprocess.Popen[bytes]] = set()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(KILL_WAIT_SECS)
    _LIVE.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        _kill_group(proc)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tagless_command() -> list[str]:
    """The ``tagless`` console script of this virtualenv."""
    script = Path(sys.executable).with_name("tagless")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from router.cli import main; main()"]


# -- config ----------------------------------------------------------------------------------


@dataclass
class TaglessConfig:
    """A config directory for one store ``shop`` with one webhook destination ``hook``."""

    directory: Path
    sink_url: str
    lease_secs: float = 5.0
    shutdown_grace_secs: float = 5.0
    max_batch_size: int = 200
    initial_backoff_secs: float = 0.2
    max_backoff_secs: float = 1.0
    webhook_timeout_secs: float = 10.0
    ingest_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    #: The outbox file; default ``tagless.db`` in the config directory.
    outbox_path: Path | None = None
    #: A PostgreSQL outbox instead of the file (several servers may share it).
    outbox_url: str | None = None
    #: server.ingest_processes (0: ingest in the main process)
    ingest_processes: int = 0
    #: server.delivery_processes (0: delivery in the main process)
    delivery_processes: int = 0
    #: server.delivery_nice
    delivery_nice: int = 0
    #: server.delivery_idle
    delivery_idle: bool = False
    #: outbox.max_pending_events: ingest answers 503 while this many wait for delivery
    max_pending_events: int = 200_000
    #: More webhook destinations, ``hook2``, ``hook3``...: each one's sink URL.
    more_hooks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "stores").mkdir(exist_ok=True)
        q = json.dumps  # a JSON string is a valid double-quoted YAML scalar
        (self.directory / "tagless.yaml").write_text(
            f"server: {{host: 127.0.0.1, port: {self.ingest_port},"
            f" shutdown_grace_secs: {self.shutdown_grace_secs},"
            f" ingest_processes: {self.ingest_processes},"
            f" delivery_processes: {self.delivery_processes},"
            f" delivery_nice: {self.delivery_nice},"
            f" delivery_idle: {str(self.delivery_idle).lower()}}}\n"
            f"outbox: {{{self._outbox}, lease_secs: {self.lease_secs},"
            f" max_pending_events: {self.max_pending_events}}}\n"
            f"admin: {{host: 127.0.0.1, port: {self.admin_port}, token: {ADMIN_TOKEN}}}\n"
            "logging: {level: info, format: json}\n"
            f"delivery: {{initial_backoff_secs: {self.initial_backoff_secs},"
            f" max_backoff_secs: {self.max_backoff_secs},"
            f" timeout_secs: {self.webhook_timeout_secs}}}\n"
        )
        (self.directory / "stores" / "shop.yaml").write_text(
            "store: shop\n"
            f"write_keys: [{WRITE_KEY}]\n"
            "client_ip: {trusted_proxies: [127.0.0.1/32], own_addresses: [192.0.2.10]}\n"
            "destinations:\n"
            + "".join(
                f"  - {{id: {name}, type: webhook, url: {q(url.rstrip('/') + '/hook')},"
                f" max_batch_size: {self.max_batch_size}}}\n"
                for name, url in self.hook_urls.items()
            )
        )

    @property
    def hook_urls(self) -> dict[str, str]:
        """Each webhook destination's sink URL by its id."""
        more = {f"hook{n}": url for n, url in enumerate(self.more_hooks, start=2)}
        return {"hook": self.sink_url, **more}

    @property
    def _outbox(self) -> str:
        if self.outbox_url is not None:
            return f"url: {json.dumps(self.outbox_url)}"
        return f"path: {json.dumps(str(self.db_path))}"

    @property
    def db_path(self) -> Path:
        return self.outbox_path or self.directory / "tagless.db"

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"


def ingest_pids(server: TaglessServer) -> dict[int, int]:
    """The live ingest processes' pids by number (``server.ingest_processes``: children of
    the main process)."""
    return child_pids(server, b"router.ingest_process")


def child_pids(server: TaglessServer, module: bytes) -> dict[int, int]:
    """The live children of the main process running ``module``: pids by ``--number``."""
    assert server.proc is not None
    found: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == server.proc.pid and module in cmdline:
            found[int(cmdline[cmdline.index(b"--number") + 1])] = int(stat.parent.name)
    return found


# -- the server process ----------------------------------------------------------------------


class ServerFailed(AssertionError):
    """The server did not start, or did not stop as asked."""


class TaglessServer:
    """One ``tagless serve`` at a time on one config; start it again on the same outbox."""

    def __init__(self, config: TaglessConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        #: Variables added to the child's environment (a fake clock's LD_PRELOAD, say).
        self.env: dict[str, str] = {}

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(
        self, within: float = STARTUP_TIMEOUT_SECS, *, open_files: int | None = None
    ) -> None:
        """Spawn the server (own process group, stderr to a file) and wait for /healthz."""
        self.spawn(open_files=open_files)
        await self._wait_healthy(within)

    def spawn(self, *, open_files: int | None = None) -> None:
        """Spawn the server and return at once; ``open_files`` sets its RLIMIT_NOFILE."""
        assert not self.running, "the previous server is still running"
        log = self.config.directory / f"stderr-{len(self.logs) + 1}.log"
        self.logs.append(log)

        def limit_files() -> None:  # runs in the child, before exec
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [*tagless_command(), "serve", "--config", str(self.config.directory)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                cwd=self.config.directory,
                start_new_session=True,
                preexec_fn=None if open_files is None else limit_files,
                env={**os.environ, **self.env} if self.env else None,
            )
        _LIVE.add(self.proc)

    async def _wait_healthy(self, within: float) -> None:
        """Wait until this child says it listens on the configured port, then for /healthz.

        A 200 on the port alone proves nothing: another process may hold the port (a port
        that was free when the config was written can be taken by anyone before the child
        binds it), and its 200 would pass for this server while the child, still starting,
        has not even created the outbox yet (a test then read a missing file: "unable to
        open database file"). The child's own ``tagless_started`` line names its port.
        """
        assert self.proc is not None
        url = f"{self.config.ingest_url}/healthz"
        deadline = time.monotonic() + within
        quick = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=quick) as session:
            while time.monotonic() < deadline:
                code = self.proc.poll()
                if code is not None:
                    raise ServerFailed(
                        f"tagless exited with {code} before /healthz answered\n{self.tail()}"
                    )
                if not self._announced():
                    await asyncio.sleep(0.05)
                    continue
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as answer:
                        if answer.status == 200:
                            return
                await asyncio.sleep(0.05)
        self.kill9()
        raise ServerFailed(f"/healthz did not answer 200 within {within}s\n{self.tail()}")

    def _announced(self) -> bool:
        """The current run logged ``tagless_started`` with the configured ingest port."""
        return any(
            record.get("event") == "tagless_started"
            and record.get("ingest") == self.config.ingest_port
            for record in self.log_events(slice(-1, None))
        )

    def kill9(self) -> None:
        """SIGKILL the server's process group and reap it."""
        if self.proc is not None:
            _kill_group(self.proc)

    def terminate(self) -> None:
        """Send SIGTERM to the server (a graceful stop)."""
        assert self.proc is not None and self.proc.poll() is None, "the server is not running"
        self.proc.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float) -> int | None:
        """The exit code, or ``None`` if the server is still running after ``within`` seconds."""
        assert self.proc is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                _LIVE.discard(self.proc)
                return code
            await asyncio.sleep(0.02)
        return self.proc.poll()

    async def stop(self, within: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL and fail if it does not exit in time."""
        self.terminate()
        code = await self.wait_exit(within)
        if code is None:
            self.kill9()
            raise ServerFailed(f"tagless did not exit within {within}s of SIGTERM\n{self.tail()}")
        return code

    def cleanup(self) -> None:
        """Kill whatever is still running (used by the fixture after every test)."""
        self.kill9()

    def tail(self, lines: int = 25) -> str:
        """The last lines of the current run's stderr."""
        if not self.logs or not self.logs[-1].exists():
            return "(no stderr)"
        text = self.logs[-1].read_text(errors="replace").splitlines()[-lines:]
        return f"--- stderr tail of {self.logs[-1].name} ---\n" + "\n".join(text)

    def log_events(self, runs: slice = slice(None)) -> list[dict[str, Any]]:
        """Every JSON log line of the given runs (default all), in order; other lines skipped."""
        found = []
        for path in self.logs[runs]:
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        found.append(record)
        return found

    def logged_at(self, event: str) -> float | None:
        """Unix time of the first ``event`` log line of the current run, if any."""
        for record in self.log_events(slice(-1, None)):
            if record.get("event") == event and "timestamp" in record:
                return datetime.fromisoformat(record["timestamp"]).timestamp()
        return None


# -- ingest client ---------------------------------------------------------------------------

ACKED, FAILED, INDETERMINATE = "acked", "failed", "indeterminate"


def message(event_id: str) -> dict[str, Any]:
    """A Segment ``Order Completed`` track call with ``event_id`` as its messageId."""
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": event_id,
        "userId": "u1",
        "properties": {"order_id": f"o-{event_id}", "revenue": 10, "currency": "EUR"},
    }


@dataclass
class Sent:
    """One ingest request as the client saw it."""

    ids: tuple[str, ...]
    started: float  # monotonic
    finished: float
    outcome: str  # acked | failed | indeterminate
    status: int | None
    error: str = ""
    wall: float = 0.0  # Unix seconds at the start, comparable with the server's log times


async def post_batch(
    session: aiohttp.ClientSession, base_url: str, ids: Sequence[str], *, within: float = 5.0
) -> Sent:
    """POST ``/v1/batch`` and classify the answer.

    acked: 200. failed: another status, or the connection was refused (nothing was sent).
    indeterminate: the connection broke or timed out after the request may have been sent.
    """
    started, wall = time.monotonic(), time.time()
    payload = {"batch": [message(i) for i in ids]}
    try:
        async with session.post(
            f"{base_url}/v1/batch",
            json=payload,
            headers={"Authorization": AUTHORIZATION},
            timeout=aiohttp.ClientTimeout(total=within),
        ) as answer:
            await answer.read()
            outcome = ACKED if answer.status == 200 else FAILED
            return Sent(tuple(ids), started, time.monotonic(), outcome, answer.status, "", wall)
    except aiohttp.ClientConnectorError as error:  # refused: the request never left
        reason = type(error).__name__
        return Sent(tuple(ids), started, time.monotonic(), FAILED, None, reason, wall)
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = type(error).__name__
        return Sent(tuple(ids), started, time.monotonic(), INDETERMINATE, None, reason, wall)


@dataclass
class History:
    """Every ingest request of a run, and the ids by outcome."""

    sent: list[Sent] = field(default_factory=list)

    def add(self, item: Sent) -> None:
        self.sent.append(item)

    def ids(self, outcome: str) -> set[str]:
        return {i for s in self.sent if s.outcome == outcome for i in s.ids}

    def counts(self) -> Counter[str]:
        return Counter(s.outcome for s in self.sent)


# -- a sink that can be slow or hang ---------------------------------------------------------


@dataclass
class SinkRequest:
    """One webhook request the sink saw, with wall times (Unix seconds, like the outbox)."""

    ids: tuple[str, ...]
    arrived: float
    answered: float = 0.0
    status: int = 0
    abandoned: bool = False  # the router had hung up before the answer could reach it

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300 and not self.abandoned


Behaviour = Callable[[SinkRequest], Awaitable[int]]


async def answer_ok(_: SinkRequest) -> int:
    return 200


class Sink:
    """A webhook receiver whose answers are an async function: it may sleep or wait."""

    def __init__(self, behaviour: Behaviour = answer_ok) -> None:
        self.behaviour = behaviour
        self.requests: list[SinkRequest] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Sink:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        seen = SinkRequest(tuple(e["event_id"] for e in body.get("events", [])), time.time())
        self.requests.append(seen)
        seen.status = await self.behaviour(seen)
        seen.answered = time.time()
        transport = request.transport
        seen.abandoned = transport is None or transport.is_closing()
        return web.json_response({"ok": 200 <= seen.status < 300}, status=seen.status)

    def delivered(self) -> Counter[str]:
        """How many times each event id was answered 2xx to a router still listening."""
        return Counter(i for r in self.requests if r.delivered for i in r.ids)


def delivered_counts(requests: Iterable[Any]) -> Counter[str]:
    """Deliveries per event id among :class:`FakePlatform` requests answered 2xx."""
    return Counter(
        event["event_id"]
        for seen in requests
        if 200 <= seen.status < 300
        for event in seen.json().get("events", [])
    )


async def wait_until(check: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    """Poll ``check`` until it holds or ``within`` seconds pass; return whether it held."""
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step)


# -- raw HTTP/1.1 ----------------------------------------------------------------------------

#: One Segment track call, as bytes.
EVENT = json.dumps(
    {"type": "track", "event": "Order Completed", "messageId": "m-1", "userId": "u-1"}
).encode()


def request_head(length: int, path: str = "/v1/track", *, expect: bool = False) -> bytes:
    """The head of an authorised JSON POST announcing a body of ``length`` bytes; with
    ``expect``, the server answers ``100 Continue`` once its handler is reading the body."""
    extra = "Expect: 100-continue\r\n" if expect else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: tagless\r\nAuthorization: {AUTHORIZATION}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def error_of(answer: bytes) -> Any:
    """The ``error`` object of a raw JSON error answer."""
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


# -- the outbox file -------------------------------------------------------------------------


def read_only(path: Path) -> sqlite3.Connection:
    """The outbox opened read-only (never creates or changes it)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def integrity_check(path: Path) -> str:
    with contextlib.closing(read_only(path)) as db:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    return "\n".join(str(row[0]) for row in rows)


def stored_event_ids(path: Path) -> Counter[str]:
    """Rows of the ``events`` table per event id."""
    with contextlib.closing(read_only(path)) as db:
        return Counter(row[0] for row in db.execute("SELECT event_id FROM events"))


def stored_bodies(path: Path) -> list[tuple[str, bytes]]:
    with contextlib.closing(read_only(path)) as db:
        return [(row[0], bytes(row[1])) for row in db.execute("SELECT event_id, body FROM events")]


def delivery_rows(path: Path) -> list[dict[str, Any]]:
    """The ``deliveries`` table (retry and dead rows) joined to event ids."""
    with contextlib.closing(read_only(path)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT e.event_id, d.* FROM deliveries d JOIN events e ON e.seq = d.seq ORDER BY d.seq"
        ).fetchall()
        return [dict(row) for row in rows]


def cursor_and_max_seq(path: Path) -> tuple[int, int]:
    """The ``hook`` cursor of store ``shop`` and the highest event seq."""
    with contextlib.closing(read_only(path)) as db:
        found = db.execute(
            "SELECT seq FROM cursors WHERE store = 'shop' AND destination = 'hook'"
        ).fetchone()
        top = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    return (found[0] if found else 0), top[0]
