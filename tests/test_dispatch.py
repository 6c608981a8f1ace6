"""The dispatcher delivers, retries on schedule, honours Retry-After and isolates poison events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from dispatch_kit import NO_JITTER, Lanes, append, delivered_ids, run_until, webhook_lane

from destinations.webhook import WebhookConfig, WebhookDestination
from router.clock import FakeClock
from router.destination import DELIVERED, Destination, Outcome
from router.dispatch import LaneDispatcher
from router.event import Event
from router.http import HttpClient
from router.outbox.sqlite import SqliteOutbox
from router.testing.fake_platform import Answer, FakePlatform, Recorded


@pytest.fixture
async def lanes() -> AsyncIterator[Lanes]:
    runner = Lanes()
    yield runner
    await runner.stop()


async def test_new_events_wake_the_dispatcher_without_polling(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """Events committed while the dispatcher idles are delivered with no clock movement."""
    lanes.start(webhook_lane(outbox, http, platform.url, clock))
    await asyncio.sleep(0.05)
    await append(outbox, ["a", "b"])
    for _ in range(200):
        if len(delivered_ids(platform)) == 2:
            break
        await asyncio.sleep(0.01)
    assert delivered_ids(platform) == ["a", "b"]


async def test_outage_then_rate_limit_then_poison(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """503 ×3, then 429 Retry-After 3, then a poison event: the window is respected, good
    events arrive once each, the poison event is dead-lettered after a few tries."""
    script = [Answer(503), Answer(503), Answer(503), Answer(429, headers={"Retry-After": "3"})]
    timeline: list[tuple[float, int]] = []

    def answer(request: Recorded) -> Answer:
        ids = {event["event_id"] for event in request.json()["events"]}
        if script:
            reply = script.pop(0)
        else:
            reply = Answer(400, {"error": "bad event"}) if "poison" in ids else Answer(200)
        timeline.append((clock.now(), reply.status))
        return reply

    platform.responder = answer
    good = [f"good-{i}" for i in range(9)]
    await append(outbox, [*good[:4], "poison", *good[4:]])
    lanes.start(webhook_lane(outbox, http, platform.url, clock))

    await run_until(lambda: len(delivered_ids(platform)) == 9, clock)
    await run_until(lambda: outbox.writer.unfinished == 0, clock)

    assert [status for _, status in timeline[:4]] == [503, 503, 503, 429]
    rate_limited_at = timeline[3][0]
    assert all(t >= rate_limited_at + 3.0 for t, _ in timeline[4:]), "sent inside Retry-After"
    assert sorted(delivered_ids(platform)) == sorted(good)  # each exactly once
    for _ in range(100):
        if await outbox.dead_letters("shop"):
            break
        await asyncio.sleep(0.01)
    [dead] = await outbox.dead_letters("shop", "hook")
    assert dead.event_id == "poison" and dead.last_status == 400
    assert dead.attempts <= 5


class Blocked(Destination[None]):
    """A destination whose platform never answers until released."""

    name = "blocked"
    config_class = object

    def __init__(self) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]
        self.release = asyncio.Event()

    def map(self, event: Event) -> str:
        return event.event_id

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        await self.release.wait()
        return [DELIVERED] * len(batch)


async def test_a_stuck_destination_does_not_delay_another(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """While one destination hangs, the other destination of the same store still delivers."""
    stuck = Blocked()
    lanes.start(LaneDispatcher(outbox, "shop", "stuck", stuck, NO_JITTER, clock))
    lanes.start(webhook_lane(outbox, http, platform.url, clock))
    await append(outbox, ["a", "b", "c"], routes=("stuck", "hook"))
    for _ in range(200):
        if len(delivered_ids(platform)) == 3:
            break
        await asyncio.sleep(0.01)
    assert delivered_ids(platform) == ["a", "b", "c"]
    [stuck_status] = await outbox.status("shop", ["stuck"])
    assert stuck_status.pending == 3
    stuck.release.set()


async def test_unauthorised_pauses_the_destination_and_keeps_events(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """401 keeps the events for retry and rests the destination instead of hammering it."""
    platform.default = Answer(401, {"error": "bad token"})
    await append(outbox, ["a"])
    lanes.start(webhook_lane(outbox, http, platform.url, clock))
    await run_until(lambda: len(platform.requests) >= 1, clock)
    before = len(platform.requests)
    await asyncio.sleep(0.1)  # no fake time passes: a paused destination sends nothing
    assert len(platform.requests) == before
    assert await outbox.dead_letters("shop") == []
    platform.default = Answer(200)
    await run_until(lambda: delivered_ids(platform) == ["a"], clock)


async def test_mapping_error_is_dead_lettered_and_others_go(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """An event the destination cannot map is dead at once; the rest of its batch is sent."""

    class Picky(WebhookDestination):
        def map(self, event: Event) -> dict[str, Any]:
            if event.event_id == "odd":
                from router.destination import MappingError

                raise MappingError("unsupported_currency", "currency XXX is not accepted")
            return super().map(event)

    destination = Picky(WebhookConfig(url=platform.url + "/hook"), http)
    lanes.start(LaneDispatcher(outbox, "shop", "hook", destination, NO_JITTER, clock))
    await append(outbox, ["a", "odd", "b"])
    await run_until(lambda: len(delivered_ids(platform)) == 2, clock)
    for _ in range(100):
        if await outbox.dead_letters("shop"):
            break
        await asyncio.sleep(0.01)
    [dead] = await outbox.dead_letters("shop")
    assert (dead.event_id, dead.reason) == ("odd", "unsupported_currency")


async def test_an_outage_rests_the_destination_instead_of_spending_attempts(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """After three failed batches in a row the destination rests, longer and longer; untried
    events wait without using attempts, and Retry-After on a 503 rests it exactly that long."""
    platform.default = Answer(503)
    await append(outbox, [f"e{i}" for i in range(200)])
    lanes.start(webhook_lane(outbox, http, platform.url, clock, max_batch_size=10))
    await run_until(lambda: len(platform.requests) >= 3, clock, step=0.01)
    for _ in range(400):  # 20 s of fake time in small steps
        await asyncio.sleep(0.001)
        clock.advance(0.05)
    # three failures in a row, then rests of 1, 2, 4, 8 s: about eight tries in 20 s
    assert 5 <= len(platform.requests) <= 9
    [status] = await outbox.status("shop", ["hook"])
    assert status.pending >= 100  # never tried: no attempt spent
    assert status.dead == 0

    platform.default = Answer(503, headers={"Retry-After": "60"})
    before = len(platform.requests)
    await run_until(lambda: len(platform.requests) > before, clock, step=0.5)
    told_at = clock.now()
    await run_until(lambda: len(platform.requests) > before + 1, clock, step=0.5)
    assert clock.now() - told_at >= 60.0


async def test_an_occasional_failure_does_not_rest_the_destination(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """One failed batch among successes is retried on its own; the destination keeps going."""
    answers = iter([Answer(503), Answer(200), Answer(503), Answer(200)])
    platform.responder = lambda _: next(answers, Answer(200))
    await append(outbox, [f"e{i}" for i in range(40)])
    lane = lanes.start(webhook_lane(outbox, http, platform.url, clock, max_batch_size=10))
    await run_until(lambda: len(set(delivered_ids(platform))) == 40, clock, step=0.1)
    assert lane.paused_until == 0.0


async def test_a_retry_that_fell_due_while_the_lane_went_idle_is_sent_with_the_clock_stopped(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """Time passes between a claim that found nothing due and the look at the next due time:
    the lane looks again shortly, in real time, and sends the retry. (It used to wait 50 ms
    on the lane's clock, which a test's clock never gave it: the lane hung.)"""
    platform.script(Answer(503), Answer(200))
    next_due, moved = outbox.next_due, []

    async def due_as_the_clock_reaches_it(store: str, destination: str) -> float | None:
        due = await next_due(store, destination)
        if due is not None and not moved:  # the retry's due time passes right now
            clock.advance(due - clock.now())
            moved.append(due)
        return due

    outbox.next_due = due_as_the_clock_reaches_it  # type: ignore[method-assign]
    await append(outbox, ["a"])
    lanes.start(webhook_lane(outbox, http, platform.url, clock))
    for _ in range(500):
        if delivered_ids(platform) == ["a"]:
            break
        await asyncio.sleep(0.01)
    assert moved and delivered_ids(platform) == ["a"]  # the retry after the 503
