"""The admin listener: token-protected JSON API for delivery status and dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from router.health import readyz
from router.ops.api import add_ops_routes
from router.reload import reload_handler

if TYPE_CHECKING:
    from router.app import Tagless


#: No token: health for orchestrators, metrics for Prometheus (counts and store names only;
#: the admin listener is bound to 127.0.0.1 by default).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _authorised(request: web.Request, app: Tagless) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and app.config.admin.token.matches(token.strip())


def admin_app(tagless: Tagless) -> web.Application:
    """Health and metrics are open; the rest needs ``Authorization: Bearer <admin token>``."""

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in OPEN_PATHS or _authorised(request, tagless):
            response: web.StreamResponse = await handler(request)
            return response
        return web.json_response({"error": "an admin token is required"}, status=401)

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

    app = web.Application(middlewares=[require_token])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/stores/{store}/dead-letters", dead_letters)
    app.router.add_post("/api/reload", reload_handler(tagless))
    add_ops_routes(app, tagless)
    return app
