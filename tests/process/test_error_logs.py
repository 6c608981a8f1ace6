"""Malformed HTTP leaves at most one JSON log line per request, with no IP and no raw bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from harness import AUTHORIZATION, TaglessServer

READ_SECS = 5.0
#: Malformed requests by what is wrong with them, and a piece of each that must not be logged.
MALFORMED = {
    "garbage request line": (b"GARBAGE\r\n\r\n", "GARBAGE"),
    "header without a colon": (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header Line\r\n\r\n",
        "Bad Header Line",
    ),
    "control byte in a header value": (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Secret: sec\x01ret-value\r\n\r\n",
        "ret-value",
    ),
    "bad chunked encoding": (
        b"POST /v1/track HTTP/1.1\r\nHost: t\r\nAuthorization: "
        + AUTHORIZATION.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz-chunk\r\nabc\r\n0\r\n\r\n",
        "zz-chunk",
    ),
    "body that is not gzip": (
        b"POST /v1/track HTTP/1.1\r\nHost: t\r\nAuthorization: "
        + AUTHORIZATION.encode()
        + b"\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\nConnection: close"
        + b"\r\n\r\nplain-secret",
        "plain-secret",
    ),
    "bad method on a kept-alive connection": (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGAR/BAGE 10.9.8.7 HTTP/1.1\r\n\r\n",
        "GAR/BAGE",
    ),
    "request line too long": (
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        "aaaaaaaa",
    ),
}


async def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await asyncio.wait_for(reader.read(), READ_SECS)
    finally:
        writer.close()


@pytest.mark.slow
async def test_malformed_requests_log_one_json_line_at_most_without_ip_or_raw_bytes(
    tagless: Callable[..., TaglessServer],
) -> None:
    """Each malformed request is answered, adds at most one line to stderr, and every line is
    JSON without the client's IP or any of the request's bytes."""
    server = tagless("http://127.0.0.1:9/unused")
    await server.start()
    log = server.logs[-1]
    for what, (raw, secret) in MALFORMED.items():
        before = len(log.read_text().splitlines())
        answer = await exchange(server.config.ingest_port, raw)
        assert answer.startswith(b"HTTP/1."), what
        await asyncio.sleep(0.2)  # anything the request causes is logged by now
        added = log.read_text().splitlines()[before:]
        assert len(added) <= 1, (what, added)
        assert all(secret not in line for line in added), (what, added)
    assert await server.stop() == 0
    text = log.read_text()
    for line in text.splitlines():
        assert isinstance(json.loads(line), dict), line
    assert "127.0.0.1" not in text and "10.9.8.7" not in text, text
    assert "Traceback" not in text
    assert any(json.loads(line)["event"] == "http_client_error" for line in text.splitlines())
