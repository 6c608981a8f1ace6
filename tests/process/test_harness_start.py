"""The process harness starts what it says it started: a port answered by another process is
not taken for the server (the cause of a kill -9 test that read a missing outbox)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp import web
from harness import ServerFailed, TaglessServer, integrity_check


async def test_a_stranger_answering_healthz_on_the_port_is_not_taken_for_the_server(
    tagless: Callable[..., TaglessServer],
) -> None:
    """Another process holds the configured port and answers /healthz 200: start() fails with
    the child's own reason (the port is taken) instead of returning at once while the child has
    not yet created its outbox (a kill and an integrity check then said "unable to open
    database file")."""
    server = tagless("http://127.0.0.1:9")

    async def healthy(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    stranger = web.Application()
    stranger.router.add_get("/healthz", healthy)
    runner = web.AppRunner(stranger)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.config.ingest_port).start()
    try:
        with pytest.raises(ServerFailed, match=r"cannot listen on 127\.0\.0\.1"):
            await server.start()
    finally:
        await runner.cleanup()
    # what the kill -9 test did next now finds the outbox the child opened before failing
    assert integrity_check(server.config.db_path) == "ok"
