"""Helpers of the dispatcher tests: events in the outbox, fake time, running dispatchers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from destinations.webhook import WebhookConfig, WebhookDestination
from router import codec
from router.clock import FakeClock
from router.dispatch import LaneDispatcher
from router.http import HttpClient
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event
from router.testing.fake_platform import FakePlatform

NO_JITTER = RetryPolicy(max_attempts=8, jitter=lambda top: top)


async def append(
    outbox: SqliteOutbox, ids: Sequence[str], routes: tuple[str, ...] = ("hook",)
) -> None:
    """Commit one event per id for store ``shop``, routed to ``routes``."""
    await outbox.append(
        [
            NewEvent("shop", i, outbox.clock.now(), routes, codec.encode(make_event(event_id=i)))
            for i in ids
        ]
    )


async def run_until(
    check: Callable[[], bool], clock: FakeClock, *, step: float = 0.25, limit: int = 4000
) -> None:
    """Let real I/O happen between small steps of fake time until ``check`` holds."""
    for _ in range(limit):
        if check():
            return
        await asyncio.sleep(0.002)
        clock.advance(step)
    raise AssertionError("condition not reached")


class Lanes:
    """Runs dispatchers for a test and stops them afterwards."""

    def __init__(self) -> None:
        self.running: list[tuple[LaneDispatcher, asyncio.Task[None]]] = []

    def start(self, lane: LaneDispatcher) -> LaneDispatcher:
        self.running.append((lane, asyncio.create_task(lane.run())))
        return lane

    async def stop(self) -> None:
        for lane, task in self.running:
            lane.stop()
            await lane.drain(1.0)
            await task


def webhook_lane(
    outbox: SqliteOutbox,
    http: HttpClient,
    url: str,
    clock: FakeClock,
    *,
    policy: RetryPolicy = NO_JITTER,
    **settings: Any,
) -> LaneDispatcher:
    """A dispatcher of store ``shop`` to a webhook at ``url``, one batch in flight."""
    destination = WebhookDestination(WebhookConfig(url=url + "/hook", **settings), http)
    return LaneDispatcher(outbox, "shop", "hook", destination, policy, clock, concurrency=1)


def delivered_ids(platform: FakePlatform) -> list[str]:
    """Event ids the platform answered 2xx to, in arrival order."""
    return [event["event_id"] for event in platform.delivered_events()]


async def wait_for(check: Callable[[], bool], *, limit: int = 1000) -> None:
    """Let real I/O happen, with fake time standing still, until ``check`` holds."""
    for _ in range(limit):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")
