"""Baseline: a bare aiohttp + orjson + SQLite group-commit ingest server: the ceiling."""

from __future__ import annotations

import argparse
import asyncio
import base64
import sqlite3
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)
"""
INSERT = "INSERT INTO outbox (event_id, payload, created_at) VALUES (?, ?, ?)"
OK = b'{"success":true}'

Row = tuple[str, bytes, float]


class GroupCommitWriter:
    """Queues (rows, future) pairs; one thread commits everything queued, up to ``max_rows``.

    Natural batching (N=0): the next commit starts as soon as the previous one is done and takes
    whole requests until ``max_rows`` rows are reached.
    """

    def __init__(self, path: Path, sync: str, max_rows: int) -> None:
        self.path = path
        self.sync = sync
        self.max_rows = max_rows
        self.queue: deque[tuple[list[Row], asyncio.Future[None]]] = deque()
        self.wakeup = asyncio.Event()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self.con: sqlite3.Connection | None = None
        self.rows = 0
        self.commits = 0

    def _open(self) -> None:
        con = sqlite3.connect(self.path)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={self.sync}")
        con.execute(SCHEMA)
        con.commit()
        self.con = con

    def _commit(self, rows: list[Row]) -> None:
        assert self.con is not None
        self.con.executemany(INSERT, rows)
        self.con.commit()

    def _close(self) -> None:
        if self.con is not None:
            self.con.close()

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._open)

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._close)
        self.executor.shutdown(wait=True)

    async def submit(self, rows: list[Row]) -> None:
        """Wait until ``rows`` are committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((rows, future))
        self.wakeup.set()
        await future

    def _take(self) -> tuple[list[Row], list[asyncio.Future[None]]]:
        rows: list[Row] = []
        futures: list[asyncio.Future[None]] = []
        while self.queue and (not rows or len(rows) + len(self.queue[0][0]) <= self.max_rows):
            request_rows, future = self.queue.popleft()
            rows.extend(request_rows)
            futures.append(future)
        return rows, futures

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                rows, futures = self._take()
                try:
                    await loop.run_in_executor(self.executor, self._commit, rows)
                except Exception as exc:  # answer every waiting request, then go on
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.rows += len(rows)
                self.commits += 1
                for future in futures:
                    if not future.done():
                        future.set_result(None)


def build_app(writer: GroupCommitWriter, write_key: str) -> web.Application:
    """The ingest app: ``POST /v1/track``, ``POST /v1/batch``, ``GET /stats``."""
    expected_auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()

    def check(request: web.Request) -> None:
        if request.headers.get("Authorization") != expected_auth:
            raise web.HTTPUnauthorized()

    async def track(request: web.Request) -> web.Response:
        check(request)
        body = await request.read()
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise web.HTTPBadRequest() from None
        if not isinstance(event, dict):
            raise web.HTTPBadRequest()
        await writer.submit([(str(event.get("messageId")), body, time.time())])
        return web.Response(body=OK, content_type="application/json")

    async def batch(request: web.Request) -> web.Response:
        check(request)
        try:
            events = orjson.loads(await request.read())["batch"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise web.HTTPBadRequest() from None
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise web.HTTPBadRequest()
        now = time.time()
        await writer.submit([(str(e.get("messageId")), orjson.dumps(e), now) for e in events])
        return web.Response(body=OK, content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"rows": writer.rows, "commits": writer.commits})

    async def lifecycle(app: web.Application) -> Any:
        await writer.start()
        task = asyncio.create_task(writer.run())
        yield
        task.cancel()
        await writer.stop()

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/track", track)
    app.router.add_post("/v1/batch", batch)
    app.router.add_get("/stats", stats)
    app.router.add_get("/healthz", stats)
    app.cleanup_ctx.append(lifecycle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sync", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--max-rows", type=int, default=1000)
    parser.add_argument("--write-key", default="bench-key")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    loop = None
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    writer = GroupCommitWriter(args.db, args.sync, args.max_rows)
    app = build_app(writer, args.write_key)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
