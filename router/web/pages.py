"""The overview, event debugger and identity-quality pages: ops reports rendered as HTML."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson
from aiohttp import web

from router import reload as config_reload
from router.ops.events import find_events
from router.ops.identity_report import identity_report
from router.ops.overview import overview
from router.web.render import page

if TYPE_CHECKING:
    from router.app import Tagless

WINDOWS: Final = ("1h", "24h", "7d")
DEFAULT_WINDOW: Final = "24h"

Report = dict[str, Any]


@attrs.frozen
class Sources:
    """Where the pages' data comes from: the ops reports (``router.ops``), each an async
    function answering a JSON-ready dict; tests may hand in their own."""

    overview: Callable[[Tagless, str], Awaitable[Report]] = overview
    find_events: Callable[..., Awaitable[Report]] = find_events
    identity_report: Callable[[Tagless, str, str], Awaitable[Report]] = identity_report


def pretty(value: Any) -> str:
    """A payload or event as indented JSON, keys in their own order."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


class Pages:
    """``/`` (overview), ``/events`` (debugger), ``/identity`` (identity quality)."""

    def __init__(self, tagless: Tagless, sources: Sources | None = None) -> None:
        self.tagless = tagless
        self.sources = sources or Sources()

    def stores(self) -> list[str]:
        return [store.store for store in self.tagless.config.stores]

    async def overview(self, request: web.Request) -> web.Response:
        window = request.query.get("window", DEFAULT_WINDOW)
        try:
            report = await self.sources.overview(self.tagless, window)
        except ValueError as error:
            return page(
                request,
                "overview.html",
                status=400,
                error=str(error),
                report=None,
                window=window,
                windows=WINDOWS,
            )
        return page(
            request, "overview.html", error="", report=report, window=window, windows=WINDOWS
        )

    async def events(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "").strip()
        store = request.query.get("store") or None
        found: Report | None = None
        error = ""
        if q:
            try:
                found = await self.sources.find_events(self.tagless, q, store=store)
            except ValueError as problem:
                error = str(problem)
        return page(
            request,
            "events.html",
            shown_q="" if "@" in q else q,  # an email is personal data: never shown back
            status=400 if error else 200,
            error=error,
            found=found,
            store=store,
            stores=self.stores(),
            pretty=pretty,
        )

    async def identity(self, request: web.Request) -> web.Response:
        stores = self.stores()
        store = request.query.get("store") or (stores[0] if stores else "")
        window = request.query.get("window", DEFAULT_WINDOW)
        try:
            report = await self.sources.identity_report(self.tagless, store, window)
        except (ValueError, KeyError) as error:
            return page(
                request,
                "identity.html",
                status=400,
                error=str(error),
                report=None,
                store=store,
                stores=stores,
                window=window,
                windows=WINDOWS,
            )
        return page(
            request,
            "identity.html",
            error="",
            report=report,
            store=store,
            stores=stores,
            window=window,
            windows=WINDOWS,
        )

    async def reload_config(self, request: web.Request) -> web.Response:
        """The overview's Reload button: read the config again, then show the overview, which
        tells how the reload went."""
        await config_reload.reload(self.tagless)
        raise web.HTTPSeeOther("/")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/reload", self.reload_config)
        app.router.add_get("/", self.overview)
        app.router.add_get("/events", self.events)
        app.router.add_get("/identity", self.identity)
