"""Fake ad platforms for the five-destination bench: each answers like its platform, cheaply.

One process serves one platform (``--platform``), so the five fakes spread over the cores the
way five remote services would not compete with Tagless at all. Each checks what identifies a
well-formed request (path, credentials) and answers with the platform's success shape, and
counts the event ids it received (read from the bytes, as bench/sink.py does, to stay cheap);
the payload rules are checked by each destination's tests, not here.
"""

from __future__ import annotations

import argparse
import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Final

import orjson
from aiohttp import web
from sink import Tally, serve

SPOTIFY_TOKEN: Final = "bench-spotify-token"  # noqa: S105 - the fake's own throwaway secret
META_TOKEN: Final = "bench-meta-token"  # noqa: S105
GA4_SECRET: Final = "bench-ga4-secret"  # noqa: S105
META_PIXEL: Final = "1234567890"
META_VERSION: Final = "v23.0"
GA4_MEASUREMENT_ID: Final = "G-BENCH1234"
ADS_CUSTOMER: Final = "1234567890"
ADS_ACTION: Final = "987654321"
BQ_PROJECT, BQ_DATASET, BQ_TABLE = "tagless-bench", "tagless", "events"
BQ_INSERT: Final = (
    f"/bigquery/v2/projects/{BQ_PROJECT}/datasets/{BQ_DATASET}/tables/{BQ_TABLE}/insertAll"
)
GOOGLE_TOKEN: Final = "token-bench"  # noqa: S105
JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _ids(key: bytes) -> re.Pattern[bytes]:
    return re.compile(rb'"' + key + rb'":"((?:[^"\\]|\\.)*)"')


#: platform -> (path, the key that carries each event's dedup id in its payload)
ROUTES: Final = {
    "spotify": ("/capi-direct/events/", _ids(b"event_id")),
    "meta": (f"/{META_VERSION}/{META_PIXEL}/events", _ids(b"event_id")),
    "ga4": ("/mp/collect", _ids(b"transaction_id")),
    "google_ads": ("/v1/events:ingest", _ids(b"transactionId")),
    "bigquery": (BQ_INSERT, _ids(b"insertId")),
}

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _authorized(platform: str, request: web.Request) -> bool:
    if platform == "meta":
        return request.query.get("access_token") == META_TOKEN
    if platform == "ga4":
        query = request.query
        return (query.get("api_secret"), query.get("measurement_id")) == (
            GA4_SECRET,
            GA4_MEASUREMENT_ID,
        )
    token = SPOTIFY_TOKEN if platform == "spotify" else GOOGLE_TOKEN
    return request.headers.get("Authorization") == f"Bearer {token}"


def _success(platform: str, events: int, number: int) -> web.Response:
    """The platform's answer to an accepted request (its documented success shape)."""
    if platform == "spotify":
        return _json({"message": "SUCCESS"})
    if platform == "meta":
        return _json({"events_received": events, "messages": [], "fbtrace_id": f"A{number}"})
    if platform == "ga4":  # the Measurement Protocol answers 2xx with no body
        return web.Response(status=204)
    if platform == "google_ads":
        return _json({"requestId": f"request-{number}"})
    return _json({"kind": "bigquery#tableDataInsertAllResponse"})  # no insertErrors: all in


def platform_handler(platform: str, tally: Tally) -> Handler:
    """Accept the platform's event request: count its ids, answer its success shape."""
    pattern = ROUTES[platform][1]
    numbers = itertools.count(1)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if not _authorized(platform, request):
            tally.rejected += 1
            return _json({"error": {"code": 401, "message": "bad credentials"}}, 401)
        ids = pattern.findall(body)
        if not ids:
            tally.without_id += 1
        tally.add_ids(ids)
        return _success(platform, len(ids), next(numbers))

    return handle


async def token(request: web.Request) -> web.Response:
    """Google's token endpoint: any JWT-bearer grant gets the bench's access token."""
    form = await request.post()
    if form.get("grant_type") != JWT_BEARER or not form.get("assertion"):
        return _json({"error": "unsupported_grant_type"}, 400)
    return _json({"access_token": GOOGLE_TOKEN, "expires_in": 3599, "token_type": "Bearer"})


def build_app(platform: str, tally: Tally) -> web.Application:
    async def stats(request: web.Request) -> web.Response:
        return _json(tally.stats())

    async def reset(request: web.Request) -> web.Response:
        tally.reset()
        return _json({"ok": True})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post(ROUTES[platform][0], platform_handler(platform, tally))
    app.router.add_post("/token", token)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--platform", choices=sorted(ROUTES), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(build_app(args.platform, Tally()), args.port)


if __name__ == "__main__":
    main()
