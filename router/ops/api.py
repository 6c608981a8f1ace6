"""The admin JSON API of the operations pages: ``/api/overview``, ``/api/events`` and
``/api/identity`` (the admin app's token check guards them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from router.ops.events import find_events
from router.ops.identity_report import identity_report
from router.ops.overview import overview

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", charset="utf-8"
    )


def _answering_errors(call: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    """A bad query parameter (a ValueError saying what would be valid) answers 400."""

    async def handler(request: web.Request) -> web.Response:
        try:
            return _json(await call(request))
        except ValueError as error:
            return _json({"error": str(error)}, status=400)

    return handler


def _int(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a whole number") from None


def add_ops_routes(app: web.Application, tagless: Any) -> None:
    """Register the operations API on the admin app."""

    async def get_overview(request: web.Request) -> Any:
        return await overview(tagless, request.query.get("window", "24h"))

    async def get_events(request: web.Request) -> Any:
        query = request.query.get("q", "")
        store = request.query.get("store") or None
        return await find_events(tagless, query, store=store, limit=_int(request, "limit", 20))

    async def get_identity(request: web.Request) -> Any:
        store = request.query.get("store")
        if not store:
            raise ValueError("store is required: /api/identity?store=<store>&window=24h")
        return await identity_report(tagless, store, request.query.get("window", "24h"))

    app.router.add_get("/api/overview", _answering_errors(get_overview))
    app.router.add_get("/api/events", _answering_errors(get_events))
    app.router.add_get("/api/identity", _answering_errors(get_identity))
