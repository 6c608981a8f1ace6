"""The admin listener: token-protected JSON API and admin UI (status, reports, dead letters)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from router.health import readyz
from router.ops.api import add_ops_routes
from router.reload import reload_handler
from router.web import add_web
from router.web.auth import AdminAuth

if TYPE_CHECKING:
    from router.app import Tagless


def admin_app(tagless: Tagless) -> web.Application:
    """Health and metrics are open; the rest needs ``Authorization: Bearer <admin token>`` or
    a signed-in browser session (router/web/auth.py)."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        return await readyz(tagless)

    async def metrics(request: web.Request) -> web.Response:
        body = tagless.metrics.exposition()
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def status(request: web.Request) -> web.Response:
        lanes: list[dict[str, Any]] = []
        for store in tagless.config.stores:
            ids = [d.id for d in store.destinations if d.enabled]
            lanes.extend(attrs.asdict(s) for s in await tagless.outbox.status(store.store, ids))
        return web.json_response({"lanes": lanes})

    async def dead_letters(request: web.Request) -> web.Response:
        store = request.match_info["store"]
        destination = request.query.get("destination")
        rows = await tagless.outbox.dead_letters(store, destination)
        return web.json_response({"dead_letters": [attrs.asdict(row) for row in rows]})

    auth = AdminAuth(tagless)
    app = web.Application(middlewares=[auth.middleware])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/stores/{store}/dead-letters", dead_letters)
    app.router.add_post("/api/reload", reload_handler(tagless))
    add_ops_routes(app, tagless)
    add_web(app, tagless, auth)
    return app
