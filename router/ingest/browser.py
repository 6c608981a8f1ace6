"""What a page's analytics.js asks of Tagless before it sends: its project settings, with CORS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson
from aiohttp import web

from router.ingest.errors import IngestError
from router.stores import StoreRuntime

#: Segment's browser library sends each call to ``<apiHost>/<first letter of its type>``.
SHORT_PATHS: Final = {
    "t": "track",
    "p": "page",
    "s": "screen",
    "i": "identify",
    "g": "group",
    "a": "alias",
}

#: Request headers a page's library may send: its key (Basic auth), its JSON (sent as
#: ``text/plain`` to stay a simple request), a gzip body, and the retry counter it adds.
ALLOWED_HEADERS: Final = "Authorization, Content-Type, Content-Encoding, X-Retry-Count"


def settings_document(store: StoreRuntime, write_key: str, api_host: str, protocol: str) -> bytes:
    """The project settings analytics.js loads from ``<cdnURL>/v1/projects/<key>/settings``.

    ``Segment.io`` points the library at this Tagless and names the store's destinations as its
    ``unbundledIntegrations``: they run server side, and any other integration key would make the
    library fetch device-mode code from Segment's CDN. Metrics are
    off (``sampleRate: 0``): the library would otherwise report to Segment's own servers. Nothing
    secret is in it: the write key is the one the page already holds.
    """
    integrations: dict[str, Any] = {
        "Segment.io": {
            "apiKey": write_key,
            "apiHost": api_host,
            "protocol": protocol,
            "unbundledIntegrations": [route.id for route in store.routes],
            "addBundledMetadata": True,
            "maybeBundledConfigIds": {},
        }
    }
    return orjson.dumps(
        {
            "integrations": integrations,
            "plan": {"track": {"__default": {"enabled": True, "integrations": {}}}},
            "edgeFunction": {},
            "analyticsNextEnabled": True,
            "middlewareSettings": {},
            "enabledMiddleware": {},
            "metrics": {"sampleRate": 0},
            "legacyVideoPluginsEnabled": False,
            "remotePlugins": [],
        }
    )


def settings_handler(
    find_store: Callable[[str | None], StoreRuntime | None],
    cors: Callable[[web.Request, web.StreamResponse, StoreRuntime | None], None],
) -> Callable[[web.Request], Any]:
    """``GET /v1/projects/{writeKey}/settings`` for the store the key selects."""

    async def handler(request: web.Request) -> web.StreamResponse:
        key = request.match_info["write_key"]
        store = find_store(key)
        if store is None:
            error = IngestError(404, "unknown_write_key", "no store has this write key")
            return error.response()
        forwarded = request.headers.get("X-Forwarded-Proto", "")
        trusted = store.ip_policy.trusts(request.remote)
        protocol = forwarded if trusted and forwarded in ("http", "https") else request.scheme
        body = settings_document(store, key, f"{request.host}/v1", protocol)
        response = web.Response(body=body, content_type="application/json")
        response.headers["Cache-Control"] = "public, max-age=300"
        cors(request, response, store)
        return response

    return handler
