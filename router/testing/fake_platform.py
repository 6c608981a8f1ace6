"""A real local HTTP server that records what destinations send and answers from a script."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import orjson
from aiohttp import web


@attrs.frozen
class Answer:
    """What the fake platform replies to one request."""

    status: int = 200
    body: Any = attrs.field(factory=lambda: {"ok": True})
    headers: Mapping[str, str] = attrs.field(factory=dict)
    #: Never answer (until the server stops): the client's timeout fires.
    hang: bool = False
    #: Drop the connection without an answer (a reset).
    reset: bool = False


@attrs.frozen
class Recorded:
    """One request as the platform saw it, with when it arrived (monotonic seconds)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    at: float
    status: int

    def json(self) -> Any:
        return orjson.loads(self.body)


Responder = Callable[[Recorded], Answer | None]


class FakePlatform:
    """Serve on 127.0.0.1, record every request, answer scripted statuses.

    Answers come first from :meth:`script` (one per request, in order), then from
    ``responder`` (a function of the request; ``None`` falls through), then ``default``.
    """

    def __init__(self, *, default: Answer | None = None, responder: Responder | None = None):
        self.default = default or Answer()
        self.responder = responder
        self.requests: list[Recorded] = []
        self._script: deque[Answer] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.url = ""

    def script(self, *answers: Answer) -> None:
        """Queue answers for the next requests, in order."""
        self._script.extend(answers)

    async def start(self) -> str:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._stopping.set()  # hanging requests end now, not at the runner's shutdown timeout
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePlatform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = Recorded(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            body,
            time.monotonic(),
            0,
        )
        answer = self._script.popleft() if self._script else None
        if answer is None and self.responder is not None:
            answer = self.responder(seen)
        answer = answer or self.default
        self.requests.append(attrs.evolve(seen, status=answer.status))
        if answer.hang:
            await self._stopping.wait()
        if answer.reset and request.transport is not None:
            request.transport.abort()
        payload = answer.body if isinstance(answer.body, bytes) else orjson.dumps(answer.body)
        return web.Response(
            status=answer.status,
            body=payload,
            headers={"Content-Type": "application/json", **answer.headers},
        )

    def delivered_events(self, key: str = "events") -> list[Any]:
        """Every element of ``body[key]`` across requests answered 2xx (webhook-shaped bodies)."""
        return [
            event
            for seen in self.requests
            if 200 <= seen.status < 300
            for event in seen.json().get(key, [])
        ]
