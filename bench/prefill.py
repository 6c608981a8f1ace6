"""Fill a server's store with a given number of events: batches posted until they are acknowledged.

wrk runs for a time, not a count, so the backlog figures post with an aiohttp client instead,
filling the template's id slots the way bench/post.lua does.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
from pathlib import Path

import aiohttp
from common import AUTH, BATCH_SIZE, BenchError
from payloads import ID_SLOT

CONCURRENCY = 16
TIMEOUT_S = 60.0


def prefill(base: str, template: Path, events: int, *, random_ids: bool = True) -> int:
    """POST ``template`` batches to ``base``/v1/batch until ``events`` are acknowledged (rounded
    up to whole batches); returns the number acknowledged. Ids as post.lua's (``random_ids``:
    64 random bits first)."""
    return asyncio.run(_prefill(base + "/v1/batch", template.read_bytes(), events, random_ids))


async def _prefill(url: str, template: bytes, events: int, random_ids: bool) -> int:
    pieces = template.split(ID_SLOT.encode())
    run_id = secrets.token_hex(4)
    counter = itertools.count(1)
    ids = (
        (b"%016x-%s-p-%d" % (random.getrandbits(64), run_id.encode(), n) for n in counter)
        if random_ids
        else (b"%s-p-%d" % (run_id.encode(), n) for n in counter)
    )
    requests = -(-events // BATCH_SIZE)
    queue = iter(range(requests))
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}

    def body() -> bytes:
        filled = [piece + next(ids) for piece in pieces[:-1]]
        return b"".join(filled) + pieces[-1]

    async def worker(session: aiohttp.ClientSession) -> int:
        acked = 0
        for _ in queue:
            async with session.post(url, data=body(), headers=headers) as answer:
                await answer.read()
                if answer.status >= 300:
                    raise BenchError(f"prefill: {url} answered {answer.status}")
            acked += BATCH_SIZE
        return acked

    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        done = await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return sum(done)
