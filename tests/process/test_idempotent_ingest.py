"""Reliability test 3: a batch sent five times is stored once and delivered once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import aiohttp
from harness import (
    ACKED,
    AUTHORIZATION,
    TaglessServer,
    delivered_counts,
    message,
    post_batch,
    stored_event_ids,
    wait_until,
)

from router.testing.fake_platform import FakePlatform


async def send_and_hang_up(port: int, ids: list[str]) -> None:
    """Write a whole /v1/batch request on a raw socket and close it without reading a byte."""
    body = json.dumps({"batch": [message(i) for i in ids]}).encode()
    head = (
        "POST /v1/batch HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: {AUTHORIZATION}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_same_batch_five_times_is_stored_and_delivered_once(
    tagless: Callable[..., TaglessServer],
) -> None:
    """Five sends of one batch (one abandoned unread, two concurrent) make one outbox row and
    one delivery per event."""
    ids = [f"idem-{uuid.uuid4().hex[:8]}-{n}" for n in range(10)]
    async with FakePlatform() as sink:
        server = tagless(sink.url)
        await server.start()
        url = server.config.ingest_url
        port = server.config.ingest_port

        # 1: the client gives up before reading the answer (indeterminate to the client).
        await send_and_hang_up(port, ids)
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as session:
            # 2: a plain retry; 3 and 4: two retries racing into the same group commit; 5: late.
            second = await post_batch(session, url, ids)
            third, fourth = await asyncio.gather(
                post_batch(session, url, ids), post_batch(session, url, ids)
            )
            await asyncio.sleep(0.3)
            fifth = await post_batch(session, url, ids)
        retries = [second, third, fourth, fifth]
        assert [r.outcome for r in retries] == [ACKED] * 4, [
            (r.outcome, r.status, r.error) for r in retries
        ]

        got_all = await wait_until(lambda: set(delivered_counts(sink.requests)) >= set(ids), 10)
        assert got_all, f"not delivered within 10 s\n{server.tail()}"
        await asyncio.sleep(1.0)  # any duplicate would have been sent by now
        delivered = delivered_counts(sink.requests)
        code = await server.stop()
        assert code == 0, f"exit code {code}\n{server.tail()}"

    assert dict(delivered) == dict.fromkeys(ids, 1), f"deliveries per event: {dict(delivered)}"
    stored = stored_event_ids(server.config.db_path)
    assert dict(stored) == dict.fromkeys(ids, 1), f"outbox rows per event: {dict(stored)}"
