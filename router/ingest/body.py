"""Reading a request body within limits and undoing its ``Content-Encoding``."""

from __future__ import annotations

import zlib
from typing import Final

from aiohttp import web

from router.ingest.errors import IngestError

#: ``Content-Encoding`` values Tagless decodes, and the ``zlib`` window bits for each (31: the
#: gzip wrapper; 15: the zlib wrapper that HTTP's deflate means). Brotli and zstd are not
#: among them: decoding them would need a dependency the project does not take.
_WBITS: Final = {"gzip": 31, "x-gzip": 31, "deflate": 15}
#: What a refused encoding's answer offers instead.
ENCODINGS_TAKEN: Final = "identity, gzip or deflate"


def too_large(what: str, limit: int) -> IngestError:
    return IngestError(413, "too_large", f"{what} is larger than the limit of {limit} bytes")


def content_encoding(request: web.Request) -> str | None:
    """The body's encoding to undo (``None`` for none), or 415 for one Tagless does not take.

    Several encodings (``gzip, gzip``, or the header twice) are refused too: no sender needs
    them, and each layer would be one more inflation to bound.
    """
    values = request.headers.getall("Content-Encoding", ())
    if not values:
        return None
    name = ",".join(values).strip().lower()
    if name in ("", "identity"):
        return None
    if name in _WBITS:
        return name
    raise IngestError(
        415,
        "unsupported_encoding",
        f"Content-Encoding {','.join(values)[:40]!r} is not supported; "
        f"send the body as {ENCODINGS_TAKEN}",
    )


async def read_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The decoded body, refused with 413 as soon as it declares or reaches ``max_bytes``.

    The ingest listener leaves ``Content-Encoding`` to this function (aiohttp's own inflating
    is switched off): ``client_max_size`` (``max_bytes``) caps the body as sent, and
    :func:`inflate` caps what it decodes to, so a gzip bomb stops there, never fully inflated.
    """
    encoding = content_encoding(request)
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise too_large("the request body", max_bytes)
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large("the request body", max_bytes) from None
    if encoding is None or not data:
        return data
    return inflate(data, encoding, max_bytes)


def inflate(data: bytes, encoding: str, max_bytes: int) -> bytes:
    """``data`` decoded from gzip or deflate: at most ``max_bytes`` (else 413), complete and
    intact (else 400). Concatenated gzip members are one body, as RFC 1952 has it."""
    wbits = _WBITS[encoding]
    if wbits == 15 and data[0] & 0x0F != 8:
        wbits = -15  # deflate sent without its zlib wrapper, as some clients do
    parts: list[bytes] = []
    size = 0
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            part = inflater.decompress(data, max_bytes + 1 - size)
        except zlib.error as error:
            raise _not_encoded(encoding, str(error)) from None
        size += len(part)
        if size > max_bytes:
            raise too_large("the decompressed request body", max_bytes)
        parts.append(part)
        if not inflater.eof:
            raise _not_encoded(encoding, "the compressed data ends early")
        data = inflater.unused_data
        if not data:
            return b"".join(parts)
        if wbits != 31:
            raise _not_encoded(encoding, "data follows the end of the compressed stream")


def _not_encoded(encoding: str, reason: str) -> IngestError:
    return IngestError(
        400,
        "invalid_encoding",
        f"the body is not valid {encoding} data ({reason}); "
        "send it compressed as its Content-Encoding says, or without that header",
    )
