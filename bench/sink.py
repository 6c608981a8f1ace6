"""Webhook sink for the end-to-end run: counts delivered events, distinct event ids, duplicates."""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import orjson
from aiohttp import web

# Bench payloads nest no object that starts with "event_id", so each match is one event.
_EVENT_ID = re.compile(rb'\{"event_id":"((?:[^"\\]|\\.)*)"')


class Tally:
    """What the sink has received so far; times are ``time.time()`` seconds."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.rejected = 0
        self.refused = 0
        self.events = 0
        self.without_id = 0
        self.seen: set[bytes] = set()
        self.duplicates = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.last_new_at: float | None = None  # the last delivery that brought a new event id

    def add_ids(self, ids: list[bytes]) -> None:
        now = time.time()
        self.requests += 1
        self.events += len(ids)
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        before = len(self.seen)
        self.seen.update(ids)
        self.duplicates += len(ids) - (len(self.seen) - before)
        if len(self.seen) > before:
            self.last_new_at = now

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "refused": self.refused,
            "events": self.events,
            "distinct": len(self.seen),
            "duplicates": self.duplicates,
            "without_id": self.without_id,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "last_new_at": self.last_new_at,
        }


def build_app(tally: Tally) -> web.Application:
    """``POST /hook`` takes deliveries, ``POST /down`` refuses them; ``/stats`` and ``/reset``;
    ``POST /outage?on=1`` makes ``/hook`` refuse too (``on=0`` ends the outage)."""
    outage = {"on": False}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if outage["on"]:  # a short Retry-After: Tagless probes again soon after the outage ends
            tally.refused += 1
            return web.Response(status=503, headers={"Retry-After": "1"})
        if not body.startswith(b'{"events":['):
            tally.rejected += 1
            raise web.HTTPBadRequest()
        # The sink shares the 2 cores with Tagless: it reads event ids straight from the bytes
        # (every webhook element starts with its event_id) instead of parsing every event.
        tally.add_ids(_EVENT_ID.findall(body))
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def down(request: web.Request) -> web.Response:
        """A destination in an outage: Tagless pauses it, so ingest runs without delivery."""
        await request.read()
        tally.refused += 1
        return web.Response(status=503, headers={"Retry-After": "3600"})

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(tally.stats()), content_type="application/json")

    async def reset(request: web.Request) -> web.Response:
        tally.reset()
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def set_outage(request: web.Request) -> web.Response:
        outage["on"] = request.query.get("on") == "1"
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/hook", hook)
    app.router.add_post("/down", down)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/outage", set_outage)
    return app


def serve(app: web.Application, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` with uvloop, without access logs, until stopped."""
    import uvloop

    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(build_app(Tally()), args.port)


if __name__ == "__main__":
    main()
