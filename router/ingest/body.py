"""Reading a request body within limits, before and while it streams in."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from router.ingest.errors import IngestError


def too_large(what: str, limit: int) -> IngestError:
    return IngestError(413, "too_large", f"{what} is larger than the limit of {limit} bytes")


async def read_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it declares or reaches more than ``max_bytes``.

    aiohttp inflates ``Content-Encoding: gzip`` (and deflate) bodies as they stream in and
    stops at the application's ``client_max_size`` (set to ``max_bytes``), so the cap applies
    to the decompressed JSON and a gzip bomb stops there, never fully inflated.
    """
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise too_large("the request body", max_bytes)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        what = (
            "the decompressed request body"
            if request.headers.get("Content-Encoding")
            else ("the request body")
        )
        raise too_large(what, max_bytes) from None


def parse_json(data: bytes) -> Any:
    """JSON into Python objects, or a 400 saying where it broke."""
    if not data:
        raise IngestError(400, "malformed_json", "the body is empty; expected a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise IngestError(400, "malformed_json", f"the body is not valid JSON: {error}") from error
