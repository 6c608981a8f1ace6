"""The channel between processes: in order, never blocking, wake-ups coalesced while it is full."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import orjson

from router.ingest_channel import MAX_MESSAGE, Channel, decode_added


async def drain(sock: socket.socket, channel: Channel) -> list[dict[str, object]]:
    """Every message the other end reads, letting the channel flush as the buffer empties."""
    sock.setblocking(False)
    messages = []
    idle = 0
    while idle < 20:
        try:
            messages.append(orjson.loads(sock.recv(MAX_MESSAGE)))
            idle = 0
        except BlockingIOError:
            idle += 1
            await asyncio.sleep(0.005)
    return messages


async def test_a_full_channel_keeps_one_wake_up_per_store_and_every_other_message() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    channel = Channel(ours, on_lost=lambda: None)
    filler = {"counts": {"received": [["shop", "purchase", n] for n in range(2000)]}}
    sent = 0
    while not channel.waiting:  # until the socket's buffer is full and messages wait
        channel.send({**filler, "n": sent})
        sent += 1
    for _ in range(500):  # the other side is not reading: each store's wake-up waits once
        channel.send({"wake": "shop"}, coalesce="wake shop")
        channel.send({"wake": "blog"}, coalesce="wake blog")
    channel.send({"ready": True})
    messages = await drain(theirs, channel)
    assert [m["n"] for m in messages if "n" in m] == list(range(sent))  # in order, none lost
    assert Counter(m["wake"] for m in messages if "wake" in m) == {"shop": 1, "blog": 1}
    assert messages[-1] == {"ready": True}
    # once the queue has gone, a wake-up goes again
    channel.send({"wake": "shop"}, coalesce="wake shop")
    assert await drain(theirs, channel) == [{"wake": "shop"}]
    channel.close()
    theirs.close()


async def test_commits_told_together_go_as_one_message_and_closing_sends_the_rest() -> None:
    """An ingest process tells the main process of its commits a few milliseconds at a time,
    their counts summed: none is lost, and closing the channel sends what is not told yet."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    channel = Channel(ours, on_lost=lambda: None)
    channel.committed(Counter({("shop", ("meta",)): 2}))
    channel.committed(Counter({("shop", ("meta",)): 3, ("blog", ()): 1}))
    [message] = await drain(theirs, channel)
    assert decode_added(message["committed"]) == {("shop", ("meta",)): 5, ("blog", ()): 1}
    channel.committed(Counter({("shop", ("meta", "ga4")): 7}))
    channel.close()  # before the next message was due
    theirs.setblocking(True)
    last = orjson.loads(theirs.recv(MAX_MESSAGE))
    assert decode_added(last["committed"]) == {("shop", ("meta", "ga4")): 7}
    assert theirs.recv(MAX_MESSAGE) == b""  # then the end
    theirs.close()
