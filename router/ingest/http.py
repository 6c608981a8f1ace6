"""The Segment-spec HTTP API: authenticate, read within limits, parse, append, answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from time import monotonic
from typing import Any, Final

import orjson
import structlog
from aiohttp import web

from router import codec
from router.config import ServerConfig
from router.event import UNKNOWN_CONSENT, IpOrigin
from router.identity.client_ip import KeyKind, ResolvedIp
from router.identity.stitching import LOOKUP_LIMIT, PATHS, Stitcher, person_ids
from router.ingest.auth import KeyRing, basic_username
from router.ingest.body import read_body, too_large
from router.ingest.browser import ALLOWED_HEADERS, SHORT_PATHS, settings_handler
from router.ingest.errors import UNAUTHORIZED, IngestError
from router.ingest.json_body import parse_json
from router.ingest.segment import InvalidEvent, IpResolver, parse_fields
from router.metrics import Metrics, Tally
from router.outbox.base import NewEvent, Outbox, OutboxError
from router.stores import StoreRuntime

log = structlog.get_logger("tagless.ingest")

#: Where a request's store is kept once its write key selected one (for the CORS answer).
_STORE: Final = web.RequestKey("tagless.store", StoreRuntime)
#: At most one ingest_backpressure line per store this often (it carries the count).
REFUSAL_LOG_SECS: Final = 10.0
#: How long the sender of a store refused for a broken plugin is asked to wait.
REFUSED_RETRY_SECS: Final = 60.0
SINGLE_TYPES: Final = ("track", "page", "screen", "identify", "group", "alias")
OK: Final = orjson.dumps({"success": True})
#: Stands for an event to stitch in ``_events``' answer until :meth:`Ingest._stitch` builds it.
_LATER: Final = NewEvent("", "", 0.0, (), b"")


class Ingest:
    """The ingest handlers; one instance serves every store."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        stores: Mapping[str, StoreRuntime],
        keys: KeyRing,
        limits: ServerConfig,
        metrics: Metrics | None = None,
        refused: frozenset[str] = frozenset(),
    ) -> None:
        self.outbox = outbox
        self.stores = stores
        self.keys = keys
        #: Stores not served because a destination plugin they use cannot be loaded.
        self.refused = refused
        self.limits = limits
        self.accepting = True
        self.metrics = metrics or Metrics()
        #: store -> (when its refusals were last logged, refusals since)
        self._refusals: dict[str, tuple[float, int]] = {}

    def routes(self) -> list[web.RouteDef]:
        """``POST /v1/<type>`` for each Segment call type (also by its first letter, as
        analytics.js sends them), ``/v1/batch``, the browser settings, CORS preflights, and a
        404 listing the endpoints for any other path under ``/v1/``."""
        defs = [web.post(f"/v1/{kind}", self._single(kind)) for kind in SINGLE_TYPES]
        defs += [
            web.post(f"/v1/{short}", self._single(kind)) for short, kind in SHORT_PATHS.items()
        ]
        defs.append(web.post("/v1/batch", self.batch))
        settings = settings_handler(self._store, _allow_origin)
        defs.append(web.get("/v1/projects/{write_key}/settings", settings))
        defs.append(web.options("/v1/{tail:.*}", self.preflight))
        defs.append(web.route("*", "/v1/{tail:.*}", _unknown_path))
        return defs

    def _single(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, kind)

        return handler

    async def batch(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, None)

    # -- the request path --------------------------------------------------------------------

    async def _handle(self, request: web.Request, kind: str | None) -> web.StreamResponse:
        try:
            origin = await self._accept(request, kind)
        except IngestError as error:
            self.metrics.rejected[error.code] += 1
            response = error.response()
            if error.status != 401:
                _allow_origin(request, response, request.get(_STORE))
            return response
        response = web.Response(body=OK, content_type="application/json")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    async def _accept(self, request: web.Request, kind: str | None) -> str:
        if not self.accepting:
            raise IngestError(503, "shutting_down", "Tagless is shutting down", retry_after=5)
        header_key = basic_username(request.headers)
        found = self._lookup(header_key) if header_key is not None else None
        if header_key is not None and found is None:
            raise self._not_served(header_key)
        if found is not None:
            request[_STORE] = found[0]
        raw = await read_body(request, max_bytes=self.limits.max_request_bytes)
        document = parse_json(raw)
        if found is None:
            body_key = document.get("writeKey") if isinstance(document, dict) else None
            found = self._lookup(body_key if isinstance(body_key, str) else None)
            if found is None:
                raise self._not_served(body_key if isinstance(body_key, str) else None)
            request[_STORE] = found[0]
        store, key_kind = found
        origin = self._check_origin(request, store)
        # no event can be larger than the whole body: measure events only when it might be
        check_sizes = len(raw) > self.limits.max_event_bytes
        events, tallies, later = self._events(request, store, key_kind, document, kind, check_sizes)
        # the parsed request is done with: free it now, not after the commit, so the heap in
        # flight is the stored bodies only (measured: less GC work and a warmer heap)
        del raw, document
        stitched = 0
        if later and store.stitcher is not None:
            stitched = await self._stitch(store.stitcher, later, events, tallies)
        try:
            await self.outbox.append(events)
        except OutboxError as error:
            self._note_refusal(store.name, error)
            raise IngestError(
                503, "unavailable", str(error), retry_after=error.retry_after
            ) from error
        self.metrics.count_received(store.name, tallies)
        if stitched:
            self.metrics.stitched[store.name] += stitched
        return origin

    def _note_refusal(self, store: str, error: OutboxError) -> None:
        """Log refused requests once per ``REFUSAL_LOG_SECS`` and store, with their count:
        an outage refuses thousands a second, and /metrics counts each one anyway."""
        now = monotonic()
        last, count = self._refusals.get(store, (-REFUSAL_LOG_SECS, 0))
        count += 1
        if now - last < REFUSAL_LOG_SECS:
            self._refusals[store] = (last, count)
            return
        log.warning("ingest_backpressure", store=store, error=str(error), refused=count)
        self._refusals[store] = (now, 0)

    def _store(self, key: str | None) -> StoreRuntime | None:
        found = self._lookup(key)
        return None if found is None else found[0]

    def _not_served(self, key: str | None) -> IngestError:
        """401 for an unknown key; 503 for a key of a store refused at start because a
        destination plugin it uses cannot be loaded: its sender keeps the events and retries."""
        match = self.keys.find(key)
        if match is None or match[0] not in self.refused:
            return UNAUTHORIZED
        message = (
            f"store {match[0]!r} is not served: a destination plugin it uses cannot be loaded"
            " (the operator sees which in the log and in 'tagless check'); nothing was stored,"
            " send again later"
        )
        return IngestError(503, "store_refused", message, retry_after=REFUSED_RETRY_SECS)

    def _lookup(self, key: str | None) -> tuple[StoreRuntime, KeyKind] | None:
        """The store of a write key and the key's kind (server or browser)."""
        match = self.keys.find(key)
        store = None if match is None else self.stores.get(match[0])
        return None if store is None or match is None else (store, match[1])

    def _check_origin(self, request: web.Request, store: StoreRuntime) -> str:
        origin = request.headers.get("Origin")
        if not origin:
            return ""
        if origin not in store.allowed_origins:
            raise IngestError(403, "origin_not_allowed", "this Origin may not send events")
        return origin

    def _events(
        self,
        request: web.Request,
        store: StoreRuntime,
        key_kind: KeyKind,
        document: Any,
        kind: str | None,
        check_sizes: bool,
    ) -> tuple[list[NewEvent], list[Tally], list[_Later]]:
        """Every event of the request ready to store, what metrics count of each, and the
        events identity stitching is to fill first (``_LATER`` in the list until then)."""
        if kind is None:
            messages, prefix = _batch_messages(document, self.limits.max_batch_events)
        else:
            messages, prefix = [document], ""
        received_at = datetime.now(UTC)
        received = received_at.timestamp()
        resolve_ip = _ip_resolver(store, request, key_kind)
        events: list[NewEvent] = []
        tallies: list[Tally] = []
        later: list[_Later] = []
        stitcher = store.stitcher
        name, max_bytes = store.name, self.limits.max_event_bytes
        for index, message in enumerate(messages):
            if check_sizes and len(codec.dumps(message)) > max_bytes:
                path = f"{prefix}[{index}]" if prefix else None
                error = too_large(f"event {path or 'body'}", max_bytes)
                error.path = path
                raise error
            try:
                fields = parse_fields(
                    message,
                    store=name,
                    received_at=received_at,
                    default_type=kind,
                    names=store.names,
                    resolve_ip=resolve_ip,
                    consent_categories=store.consent_categories,
                    value_from=store.value_from,
                )
            except InvalidEvent as error:  # the path is built only now, on the error path
                if prefix:
                    error = error.under(f"{prefix}[{index}]")
                raise IngestError(400, "invalid_event", str(error), path=error.path) from error
            consent = fields.get("consent") or UNKNOWN_CONSENT
            routes, skipped = store.route(fields["name"], consent, fields["source_name"])
            if stitcher is not None and stitcher.needs(fields):
                later.append((len(events), fields, received, routes, skipped))
                events.append(_LATER)
                tallies.append(("", "", "", False, ()))
                continue
            events.append(_stored(name, fields, received, routes, stitcher is not None))
            tallies.append(_tally(fields, routes, skipped))
        return events, tallies, later

    async def _stitch(
        self,
        stitcher: Stitcher,
        later: list[_Later],
        events: list[NewEvent],
        tallies: list[Tally],
    ) -> int:
        """Fill each event of ``later`` from its person's committed events and put it in its
        place in ``events`` and ``tallies``; return how many were filled."""
        filled = 0
        for index, fields, received, routes, skipped in later:
            anonymous_id, user_id = person_ids(fields)
            since = received - stitcher.window_secs
            try:
                found = await self.outbox.person_events(
                    stitcher.store, anonymous_id, user_id, since, LOOKUP_LIMIT, PATHS
                )
            except OutboxError as error:  # the event goes unstitched rather than refused
                log.warning("stitching_lookup_failed", store=stitcher.store, error=str(error))
                found = []
            filled += stitcher.fill(fields, found)
            events[index] = _stored(stitcher.store, fields, received, routes, True)
            tallies[index] = _tally(fields, routes, skipped)
        return filled

    # -- CORS --------------------------------------------------------------------------------

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        """Answer a CORS preflight: echo an origin some store allows, exactly, never ``*``.

        A preflight carries no write key, so it cannot tell the store; the request that follows
        is answered for its own store's origins only (a 403 outside them).
        """
        response = web.Response(status=204)
        origin = request.headers.get("Origin")
        if origin and any(origin in store.allowed_origins for store in self.stores.values()):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        if "Access-Control-Allow-Origin" in response.headers:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response


#: An event identity stitching fills before it is stored: (its place in the request, its
#: fields, when it was received, its routes, the routes consent skipped).
_Later = tuple[int, dict[str, Any], float, tuple[str, ...], tuple[tuple[str, str], ...]]


def _stored(
    store: str, fields: dict[str, Any], received: float, routes: tuple[str, ...], ids: bool
) -> NewEvent:
    """The event as the outbox stores it: its body, and with ``ids`` (the store stitches) the
    ids stitching looks it up by; without, none, so its indexes cost a store without nothing."""
    anonymous_id, user_id = person_ids(fields) if ids else (None, None)
    body = codec.encode_fields(fields)
    return NewEvent(store, fields["event_id"], received, routes, body, anonymous_id, user_id)


def _tally(
    fields: dict[str, Any], routes: tuple[str, ...], skipped: tuple[tuple[str, str], ...]
) -> Tally:
    """What metrics count of a stored event."""
    return (
        fields["name"],
        fields["client_ip_class"],
        fields["client_ip_origin"],
        bool(routes),
        skipped,
    )


_ENDPOINTS: Final = sorted(
    [f"POST /v1/{kind}" for kind in (*SINGLE_TYPES, "batch")]
    + ["GET /v1/projects/{writeKey}/settings"]
)


_POST_TAILS: Final = frozenset({*SINGLE_TYPES, *SHORT_PATHS, "batch"})
_SETTINGS_TAIL: Final = re.compile(r"projects/[^/]+/settings")


async def _unknown_path(request: web.Request) -> web.StreamResponse:
    """404 for a path under /v1/ that is no endpoint, naming the ones there are."""
    tail = request.match_info.get("tail", "")
    settings = _SETTINGS_TAIL.fullmatch(tail) is not None
    if settings or tail in _POST_TAILS:
        allowed = "GET" if settings else "POST"
        message = f"{request.method} is not allowed here; use {allowed}"
        error = IngestError(405, "method_not_allowed", message)
        response = error.response()
        response.headers["Allow"] = f"{allowed}, OPTIONS"
        return response
    message = f"no endpoint {request.method} {request.path}; endpoints: {', '.join(_ENDPOINTS)}"
    return IngestError(404, "not_found", message).response()


def _allow_origin(
    request: web.Request, response: web.StreamResponse, store: StoreRuntime | None
) -> None:
    """Let a page read the answer when its Origin is one the request's own store allows."""
    origin = request.headers.get("Origin")
    if origin and store is not None and origin in store.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


def _batch_messages(document: Any, max_events: int) -> tuple[list[Any], str]:
    if not isinstance(document, dict) or not isinstance(document.get("batch"), list):
        raise IngestError(
            400, "invalid_batch", 'expected a JSON object with a "batch" array', path="batch"
        )
    messages: list[Any] = document["batch"]
    if not messages:
        raise IngestError(400, "invalid_batch", "the batch is empty", path="batch")
    if len(messages) > max_events:
        raise IngestError(
            413, "too_large", f"{len(messages)} events in one batch; the limit is {max_events}"
        )
    return messages, "batch"


def _ip_resolver(store: StoreRuntime, request: web.Request, kind: KeyKind) -> IpResolver:
    """Client-IP resolution for one request: the header walk runs at most once per request.
    A browser key's ``context.ip`` is ignored (see ``ClientIpPolicy.resolve``)."""
    peer = request.remote
    headers = request.headers
    policy = store.ip_policy
    connection: list[ResolvedIp] = []

    def resolve(payload_ip: str | None) -> tuple[str | None, IpOrigin, str]:
        if payload_ip is not None and kind == "server":
            found = policy.resolve(peer, headers, payload_ip)
        else:
            if not connection:
                connection.append(policy.resolve(peer, headers, None, kind))
            found = connection[0]
        return found.ip, found.origin, found.ip_class

    return resolve
