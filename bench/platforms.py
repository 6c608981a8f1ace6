"""Fake ad platforms for the five-destination bench: each answers like its platform, cheaply.

One process serves one platform (``--platform``), on bench/fastserve.py: five remote services
would not compete with Tagless for its CPU at all, so the fakes spend as little of it as they
can, and only what nothing else wants (Linux's SCHED_IDLE policy). Each checks what identifies a
well-formed request (path, credentials) and answers with the platform's success shape, and
counts the event ids it received (read from the bytes, as bench/sink.py does, to stay cheap);
the payload rules are checked by each destination's tests, not here.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
from typing import Final
from urllib.parse import parse_qsl

import orjson
from fastserve import Answer, Handler, Request, run
from sink import Tally

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


def _json(data: object, status: int = 200) -> Answer:
    return status, "application/json", orjson.dumps(data)


def _authorized(platform: str, query: dict[str, str], headers: dict[str, str]) -> bool:
    if platform == "meta":
        return query.get("access_token") == META_TOKEN
    if platform == "ga4":
        return (query.get("api_secret"), query.get("measurement_id")) == (
            GA4_SECRET,
            GA4_MEASUREMENT_ID,
        )
    token = SPOTIFY_TOKEN if platform == "spotify" else GOOGLE_TOKEN
    return headers.get("authorization") == f"Bearer {token}"


def _success(platform: str, events: int, number: int) -> Answer:
    """The platform's answer to an accepted request (its documented success shape)."""
    if platform == "spotify":
        return _json({"message": "SUCCESS"})
    if platform == "meta":
        return _json({"events_received": events, "messages": [], "fbtrace_id": f"A{number}"})
    if platform == "ga4":  # the Measurement Protocol answers 2xx with no body
        return 204, None, b""
    if platform == "google_ads":
        return _json({"requestId": f"request-{number}"})
    return _json({"kind": "bigquery#tableDataInsertAllResponse"})  # no insertErrors: all in


def _token(body: bytes) -> Answer:
    """Google's token endpoint: any JWT-bearer grant gets the bench's access token."""
    form = dict(parse_qsl(body.decode()))
    if form.get("grant_type") != JWT_BEARER or not form.get("assertion"):
        return _json({"error": "unsupported_grant_type"}, 400)
    return _json({"access_token": GOOGLE_TOKEN, "expires_in": 3599, "token_type": "Bearer"})


def platform_handler(platform: str, tally: Tally) -> Handler:
    """The fake's routes: the platform's event endpoint (count its ids, answer its success
    shape), Google's ``/token``, and the bench's ``/stats`` and ``/reset``."""
    path, pattern = ROUTES[platform]
    numbers = itertools.count(1)

    def handle(request: Request) -> Answer:
        method, at, query, headers, body = request
        if method == "POST" and at == path:
            if not _authorized(platform, query, headers):
                tally.rejected += 1
                return _json({"error": {"code": 401, "message": "bad credentials"}}, 401)
            ids = pattern.findall(body)
            if not ids:
                tally.without_id += 1
            tally.add_ids(ids)
            return _success(platform, len(ids), next(numbers))
        if method == "POST" and at == "/token":
            return _token(body)
        if method == "GET" and at == "/stats":
            return _json(tally.stats())
        if method == "POST" and at == "/reset":
            tally.reset()
            return _json({"ok": True})
        return _json({"error": f"no route {method} {at}"}, 404)

    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--platform", choices=sorted(ROUTES), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    run(platform_handler(args.platform, Tally()), args.port)


if __name__ == "__main__":
    main()
