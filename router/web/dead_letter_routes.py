"""The dead-letters page, its replay form (dry run, then confirm), and their JSON API:
``GET /api/dead-letters`` and ``POST /api/replay``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from router.web.dead_letters import DEFAULT_LIMIT, MAX_ROWS, FilterError, Filters, find
from router.web.render import page
from router.web.replaying import ReplayRequest, replay, replay_body

if TYPE_CHECKING:
    from multidict import MultiDictProxy

    from router.app import Tagless

FILTER_FIELDS = ("store", "destination", "reason", "since", "until")


def store_names(tagless: Tagless) -> list[str]:
    return [store.store for store in tagless.config.stores]


def limit_of(text: str | None) -> int:
    """``limit``: 1 to 1000 rows, 200 by default."""
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 0 < int(text) <= 1000:
        raise FilterError(f"limit={text!r} must be a whole number from 1 to 1000")
    return int(text)


def picked(form: MultiDictProxy[Any]) -> list[tuple[str, str, str]]:
    """The (store, destination, event id) rows a replay form names: the one row whose button
    was pressed (``one``), else the ticked ones (``pick``); each a JSON triple."""
    chosen = form.getall("one", []) or form.getall("pick", [])
    rows = []
    for value in chosen:
        try:
            store, destination, event_id = orjson.loads(str(value))
        except (orjson.JSONDecodeError, ValueError, TypeError):
            raise FilterError(
                "a picked dead letter is not [store, destination, event id]"
            ) from None
        rows.append((str(store), str(destination), str(event_id)))
    return rows


async def requests_of(
    tagless: Tagless, form: MultiDictProxy[Any], dry_run: bool
) -> list[ReplayRequest]:
    """What a replay form asks for: the rows picked, or every dead letter the page's filter
    lists (``scope=all``), as one request per (store, destination) naming their event ids,
    so that a replay sends exactly the rows the page showed."""
    stores = store_names(tagless)
    rows = picked(form)
    if not rows:
        if form.get("scope") != "all":
            raise FilterError("tick the dead letters to replay, or replay all that match")
        query = {name: str(form.get(name, "")) for name in FILTER_FIELDS}
        listed = await find(tagless, Filters.parse(query, stores), limit=MAX_ROWS)
        rows = [(row["store"], row["destination"], row["event_id"]) for row in listed]
    groups: dict[tuple[str, str], list[str]] = {}
    for store, destination, event_id in rows:
        groups.setdefault((store, destination), []).append(event_id)
    return [
        ReplayRequest.build({"store": store, "destination": destination}, ids, dry_run, stores)
        for (store, destination), ids in groups.items()
    ]


async def total(tagless: Tagless, requests: list[ReplayRequest]) -> dict[str, Any]:
    """The replay answers of several requests added up."""
    summed: dict[str, Any] = {"matched": 0, "replayed": 0, "would_refuse_age": 0}
    for request in requests:
        answer = await replay(tagless, request)
        for key in summed:
            value = answer.get(key)
            summed[key] = None if value is None or summed[key] is None else summed[key] + value
    return summed


class DeadLetterRoutes:
    """``/dead-letters`` (page and replay form), ``/api/dead-letters``, ``/api/replay``."""

    def __init__(self, tagless: Tagless) -> None:
        self.tagless = tagless

    async def api_list(self, request: web.Request) -> web.Response:
        try:
            filters = Filters.parse(request.query, store_names(self.tagless))
            limit = limit_of(request.query.get("limit"))
        except FilterError as error:
            return web.json_response({"error": str(error)}, status=400)
        rows = await find(self.tagless, filters, limit)
        return web.json_response(
            {"filters": filters.as_query(), "count": len(rows), "dead_letters": rows}
        )

    async def api_replay(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as error:
            return web.json_response({"error": f"the body is not JSON: {error}"}, status=400)
        try:
            return web.json_response(await replay_body(self.tagless, body))
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)

    async def page(self, request: web.Request) -> web.Response:
        stores = store_names(self.tagless)
        try:
            filters = Filters.parse(request.query, stores)
        except FilterError as error:
            return page(
                request,
                "dead_letters.html",
                status=400,
                error=str(error),
                rows=[],
                query=dict(request.query),
                stores=stores,
                replayed=None,
            )
        rows = await find(self.tagless, filters)
        replayed = request.query.get("replayed", "")
        return page(
            request,
            "dead_letters.html",
            error="",
            rows=rows,
            query=filters.as_query(),
            stores=stores,
            replayed=int(replayed) if replayed.isdigit() else None,
        )

    async def replay_form(self, request: web.Request) -> web.Response:
        """First a dry run that shows the counts and asks to confirm; ``confirm`` replays."""
        form = await request.post()
        confirmed = form.get("confirm") == "1"
        try:
            wanted = await requests_of(self.tagless, form, dry_run=not confirmed)
            counts = await total(self.tagless, wanted)
        except ValueError as error:
            return page(
                request, "replay.html", status=400, error=str(error), counts=None, fields=[]
            )
        back = {name: str(form[name]) for name in FILTER_FIELDS if form.get(name)}
        if confirmed:
            raise web.HTTPSeeOther(
                "/dead-letters?" + urlencode({**back, "replayed": counts["replayed"]})
            )
        fields = [(name, str(value)) for name, value in form.items() if name != "csrf_token"]
        return page(request, "replay.html", error="", counts=counts, fields=fields)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/dead-letters", self.page)
        app.router.add_post("/dead-letters/replay", self.replay_form)
        app.router.add_get("/api/dead-letters", self.api_list)
        app.router.add_post("/api/replay", self.api_replay)
