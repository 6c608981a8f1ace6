"""Reading a request body within limits: size before reading, gzip with a capped expansion."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from aiohttp import web

from router.ingest.errors import IngestError


def too_large(what: str, limit: int) -> IngestError:
    return IngestError(413, "too_large", f"{what} is larger than the limit of {limit} bytes")


async def read_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The raw body, refused with 413 before buffering when it declares or reaches a larger size."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise too_large("the request body", max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise too_large("the request body", max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(data: bytes, *, max_bytes: int) -> bytes:
    """Decompress gzip, stopping as soon as the output would pass ``max_bytes`` (gzip bombs)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as error:
        raise IngestError(400, "bad_gzip", f"the body is not valid gzip: {error}") from error
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise too_large("the decompressed body", max_bytes)
    if not inflater.eof:
        raise IngestError(400, "bad_gzip", "the gzip body is truncated")
    return out


def parse_json(data: bytes) -> Any:
    """JSON into Python objects, or a 400 saying where it broke."""
    if not data:
        raise IngestError(400, "malformed_json", "the body is empty; expected a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise IngestError(400, "malformed_json", f"the body is not valid JSON: {error}") from error
