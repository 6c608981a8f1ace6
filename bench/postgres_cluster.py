"""PostgreSQL figures for `make bench`: one SQLite node, one PostgreSQL node and three
PostgreSQL nodes on this machine, under the same load in the same run: ingest events/s,
end-to-end events/s (acknowledged to delivered at a webhook sink) and the request p99.

Self-contained (its own sink and load generator, an aiohttp client posting /v1/batch from
this process); run by `bench/run.py --postgres on|off|auto` (auto: when PostgreSQL answers on
127.0.0.1:5432), or alone: `python bench/postgres_cluster.py [--duration S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

SERVER: Final = os.environ.get("TAGLESS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
TAGLESS: Final = Path(sys.executable).parent / "tagless"
WRITE_KEY: Final = "bench-key"
CLIENTS: Final = 16
EVENTS_PER_REQUEST: Final = 50
SETUPS: Final = (("SQLite, 1 node", "sqlite", 1), ("PostgreSQL, 1 node", "postgres", 1),
                 ("PostgreSQL, 3 nodes", "postgres", 3))  # fmt: skip


@dataclass
class Figures:
    setup: str
    ingest_eps: float
    e2e_eps: float | None
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_answers() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), 1.0):
        return True
    return False


# -- the sink (a process of its own) -----------------------------------------------------------


def sink_main(port: int) -> None:
    """Count the events a webhook destination delivers; GET /stats: count and last arrival."""
    seen = {"events": 0, "last": 0.0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        seen["events"] += len(body.get("events", []))
        seen["last"] = time.time()
        return web.json_response({"ok": True})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(seen)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- nodes -------------------------------------------------------------------------------------


def write_config(directory: Path, port: int, sink_port: int, outbox: str) -> None:
    (directory / "stores").mkdir(parents=True)
    (directory / "tagless.yaml").write_text(
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        f"outbox: {{{outbox}, max_pending_events: 100000000}}\n"
        f"admin: {{host: 127.0.0.1, port: {free_port()}, token: bench-admin-token}}\n"
        "logging: {level: warning, format: json}\n"
    )
    (directory / "stores" / "bench.yaml").write_text(
        f"store: bench\nwrite_keys: [{WRITE_KEY}]\ndestinations:\n"
        f'  - {{id: hook, type: webhook, url: "http://127.0.0.1:{sink_port}/hook",'
        " max_batch_size: 500}\n"
    )


def spawn(command: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a process (its output to ``log``, if given)."""
    if log is None:
        return subprocess.Popen(command)
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=out)


def log_tail(log: Path, lines: int = 15) -> str:
    """The last ``lines`` of a process's output, or why there are none."""
    if not log.exists():
        return f"({log} was not written)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def wait_ok(
    session: aiohttp.ClientSession, url: str, within: float = 60.0, log: Path | None = None
) -> None:
    """Wait for ``url`` to answer 200; else fail with its last answer and the tail of ``log``
    (the process's output, in a directory deleted afterwards)."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(url) as answer:
                if answer.status == 200:
                    return
                last = f"{answer.status} {(await answer.text())[:300]}"
        await asyncio.sleep(0.1)
    tail = "" if log is None else "\n" + log_tail(log)
    raise RuntimeError(f"{url} did not answer 200 within {within}s (last: {last}){tail}")


async def admin_sql(sql: str) -> None:
    import asyncpg

    db = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await db.execute(sql)
    finally:
        await db.close()


# -- one setup ---------------------------------------------------------------------------------


def batch(run: str, n: int) -> dict[str, object]:
    return {
        "batch": [
            # 64 random bits first, as SDKs' UUIDs: new ids land anywhere in the dedup index
            {"type": "track", "event": "Order Completed",
             "messageId": f"{random.getrandbits(64):016x}-{run}-{n}-{i}",
             "userId": f"u{n % 997}", "properties": {"revenue": 10.5, "currency": "EUR"},
             "context": {"ip": "81.2.69.142", "userAgent": "Mozilla/5.0"}}
            for i in range(EVENTS_PER_REQUEST)
        ]
    }  # fmt: skip


async def load(urls: list[str], seconds: float) -> tuple[int, list[float], int, float]:
    """Post batches from CLIENTS clients, round robin over ``urls``, for ``seconds``; return
    acknowledged events, request latencies (s), errors and when the load started."""
    run, counter, targets = uuid.uuid4().hex[:8], itertools.count(), itertools.cycle(urls)
    latencies: list[float] = []
    acked = errors = 0
    started = time.time()
    deadline = time.monotonic() + seconds
    auth = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal acked, errors
        while time.monotonic() < deadline:
            body, url = batch(run, next(counter)), next(targets)
            began = time.monotonic()
            try:
                async with session.post(f"{url}/v1/batch", json=body, headers=auth) as answer:
                    await answer.read()
                    ok = answer.status == 200
            except aiohttp.ClientError:
                ok = False
            latencies.append(time.monotonic() - began)
            if ok:
                acked += EVENTS_PER_REQUEST
            else:
                errors += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
    return acked, latencies, errors, started


async def measure(label: str, backend: str, nodes: int, seconds: float, work: Path) -> Figures:
    sink_port = free_port()
    database = f"tagless_bench_{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        await admin_sql(f"CREATE DATABASE {database}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(spawn([sys.executable, __file__, "--sink", str(sink_port)]))
        urls, logs = [], []
        for n in range(nodes):
            port, directory = free_port(), work / f"{backend}-{nodes}-{n}"
            outbox = (
                f"url: '{SERVER}/{database}'"
                if backend == "postgres"
                else f"path: {directory / 'tagless.db'}"
            )
            write_config(directory, port, sink_port, outbox)
            command = [str(TAGLESS), "serve", "--config", str(directory)]
            logs.append(directory / "serve.log")
            procs.append(spawn(command, logs[-1]))
            urls.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession() as session:
            await wait_ok(session, f"http://127.0.0.1:{sink_port}/stats")
            for url, log in zip(urls, logs, strict=True):
                await wait_ok(session, f"{url}/readyz", log=log)
        acked, latencies, errors, started = await load(urls, seconds)
        ingest = acked / seconds
        e2e = None
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + max(120.0, seconds * 10)
            while time.monotonic() < deadline:
                async with session.get(f"http://127.0.0.1:{sink_port}/stats") as answer:
                    stats = await answer.json()
                if stats["events"] >= acked:
                    e2e = acked / (stats["last"] - started)
                    break
                await asyncio.sleep(0.2)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        return Figures(label, ingest, e2e, p99, errors)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if backend == "postgres":
            await admin_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


async def measure_all(seconds: float) -> list[Figures]:
    with tempfile.TemporaryDirectory(prefix="tagless-bench-pg-") as work:
        return [
            await measure(label, backend, nodes, seconds, Path(work))
            for label, backend, nodes in SETUPS
        ]


def section(seconds: float) -> str:
    """The report's PostgreSQL section (markdown)."""
    if not postgres_answers():
        return "\n## PostgreSQL outbox\n\nskipped: no PostgreSQL answers on 127.0.0.1:5432\n"
    rows = asyncio.run(measure_all(seconds))
    lines = [
        "",
        "## PostgreSQL outbox beside SQLite",
        "",
        f"{CLIENTS} clients posting /v1/batch ({EVENTS_PER_REQUEST} events a request) round"
        f" robin over the nodes for {seconds:g} s, one webhook destination; every node and the"
        " database on this machine, the load generator a Python client in the bench process;"
        " each messageId starts with 64 random bits, as SDKs' UUIDs do.",
        "",
        "| setup | ingest events/s | end-to-end events/s | request p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for f in rows:
        e2e = f"{f.e2e_eps:,.0f}" if f.e2e_eps is not None else "incomplete"
        lines.append(f"| {f.setup} | {f.ingest_eps:,.0f} | {e2e} | {f.p99_ms:,.1f} | {f.errors} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per setup")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink is not None:
        sink_main(args.sink)
        return
    print(section(args.duration), end="")


if __name__ == "__main__":
    main()
