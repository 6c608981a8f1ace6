"""The shared HTTP client reads a platform's whole answer, up to its cap, however it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from router.http import MAX_READ_BODY, HttpClient
from router.testing.fake_platform import Answer, FakePlatform


@pytest.fixture
async def streaming() -> AsyncIterator[str]:
    """A server answering GET /<n> with n bytes, streamed in 16 kB chunks."""

    async def handle(request: web.Request) -> web.StreamResponse:
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        await response.prepare(request)
        for start in range(0, size, 16_384):
            await response.write(b"x" * min(16_384, size - start))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{size}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_large_answer_is_read_whole(http: HttpClient) -> None:
    """A 300 kB JSON answer (2,000 Google Ads results) arrives complete, not its first chunk."""
    body = b'{"results": [' + b",".join([b'{"gclid": "' + b"c" * 120 + b'"}'] * 2000) + b"]}"
    async with FakePlatform(default=Answer(200, body)) as platform:
        response = await http.post(platform.url, b"{}", {}, timeout_secs=10)
    assert response.body == body


async def test_a_streamed_answer_is_read_whole(http: HttpClient, streaming: str) -> None:
    """An answer written in many small chunks is joined in full."""
    response = await http.get(f"{streaming}/{300_000}", timeout_secs=10)
    assert len(response.body) == 300_000


async def test_an_answer_beyond_the_cap_is_cut_at_the_cap(http: HttpClient, streaming: str) -> None:
    """More than MAX_READ_BODY bytes: exactly the cap is kept, the rest is not read."""
    response = await http.get(f"{streaming}/{MAX_READ_BODY + 100_000}", timeout_secs=10)
    assert len(response.body) == MAX_READ_BODY
