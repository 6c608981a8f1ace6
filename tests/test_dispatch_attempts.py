"""The dispatcher tells an attempts observer of every settled try: state, status, reason and the
send's latency on the clock; and the app wires a store's lanes to its audit sinks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dispatch_kit import NO_JITTER, Lanes, append, delivered_ids, wait_for, webhook_lane
from structlog.testing import capture_logs

from destinations.webhook import WebhookConfig, WebhookDestination
from router.attempts import Attempt, AttemptSink, observer_for
from router.clock import FakeClock
from router.destination import MappingError
from router.dispatch import LaneDispatcher
from router.event import Event
from router.http import HttpClient
from router.outbox.policy import RetryPolicy
from router.outbox.sqlite import SqliteOutbox
from router.testing.fake_platform import Answer, FakePlatform, Recorded


@pytest.fixture
async def lanes() -> AsyncIterator[Lanes]:
    runner = Lanes()
    yield runner
    await runner.stop()


def taking(clock: FakeClock, *answers: tuple[float, Answer]) -> Any:
    """A responder that lets ``seconds`` of fake time pass, then gives the next answer."""
    queue = list(answers)

    def answer(_: Recorded) -> Answer:
        seconds, reply = queue.pop(0)
        clock.advance(seconds)
        return reply

    return answer


async def test_each_try_is_told_with_its_state_status_reason_and_latency(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """A 503 that took 250 ms, then a 200 that took 125 ms: two attempts, retry then delivered,
    numbered 1 and 2, each with when its request went out."""
    platform.responder = taking(clock, (0.25, Answer(503)), (0.125, Answer(200)))
    seen: list[Attempt] = []
    lane = webhook_lane(outbox, http, platform.url, clock)
    lane.attempts = seen.append
    start = clock.now()
    lanes.start(lane)
    await append(outbox, ["a"])
    await wait_for(lambda: len(seen) == 1)
    await asyncio.sleep(0.05)
    clock.advance(1.0)  # the backoff after one failure (no jitter)
    await wait_for(lambda: len(seen) == 2)
    common = {"store": "shop", "destination": "hook", "destination_type": "webhook"}
    assert seen == [
        Attempt(**common, event_id="a", attempt=1, outcome="retry", status=503,
                reason="http_503", latency_ms=250.0, attempted_at=start),
        Attempt(**common, event_id="a", attempt=2, outcome="delivered", status=200,
                reason="ok", latency_ms=125.0, attempted_at=start + 1.25),
    ]  # fmt: skip


async def test_a_try_the_policy_gives_up_on_is_told_as_dead(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """The state is the outbox's verdict: a 503 on the last allowed attempt is dead, not retry."""
    platform.default = Answer(503)
    seen: list[Attempt] = []
    policy = RetryPolicy(max_attempts=1, jitter=lambda top: top)
    lane = webhook_lane(outbox, http, platform.url, clock, policy=policy)
    lane.attempts = seen.append
    lanes.start(lane)
    await append(outbox, ["a"])
    await wait_for(lambda: len(seen) == 1)
    [attempt] = seen
    assert (attempt.outcome, attempt.status, attempt.attempt) == ("dead", 503, 1)


async def test_an_event_that_cannot_be_mapped_is_told_as_dead_with_nothing_sent(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """A mapping error: dead, its reason, no status and no latency; its batch-mate is sent."""

    class Picky(WebhookDestination):
        def map(self, event: Event) -> dict[str, Any]:
            if event.event_id == "odd":
                raise MappingError("unsupported_currency", "currency XXX is not accepted")
            return super().map(event)

    seen: list[Attempt] = []
    destination = Picky(WebhookConfig(url=platform.url + "/hook"), http)
    lane = LaneDispatcher(
        outbox, "shop", "hook", destination, NO_JITTER, clock, attempts=seen.append
    )
    lanes.start(lane)
    await append(outbox, ["odd", "b"])
    await wait_for(lambda: len(seen) == 2)
    by_id = {attempt.event_id: attempt for attempt in seen}
    odd, sent = by_id["odd"], by_id["b"]
    assert (odd.outcome, odd.reason, odd.status, odd.latency_ms) == (
        "dead",
        "unsupported_currency",
        None,
        None,
    )
    assert odd.attempted_at == clock.now()
    assert (sent.outcome, sent.status, sent.latency_ms) == ("delivered", 200, 0.0)


async def test_an_observer_that_fails_does_not_stop_delivery(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """A crashing observer is logged as an error; every event is still delivered and settled."""

    def broken(attempt: Attempt) -> None:
        raise RuntimeError("sink bug")

    with capture_logs() as logs:
        lane = webhook_lane(outbox, http, platform.url, clock)
        lane.attempts = broken
        lanes.start(lane)
        await append(outbox, ["a", "b"])
        await wait_for(lambda: len(delivered_ids(platform)) == 2)
        await wait_for(lambda: lane.metrics.deliveries[("shop", "hook", "delivered")] == 2)
    crashed = [log for log in logs if log["event"] == "attempt_observer_crashed"]
    assert crashed and crashed[0]["error"] == "RuntimeError"


class Recording:
    """An attempt sink that keeps what it observes."""

    def __init__(self) -> None:
        self.seen: list[Attempt] = []

    def observe(self, attempt: Attempt) -> None:
        self.seen.append(attempt)

    def start(self) -> None:
        pass

    async def close(self, grace_secs: float) -> None:
        pass


def test_a_lane_reports_to_every_sink_of_its_store_but_its_own() -> None:
    """Two audit sinks in shop: each hears the other and the webhook, never itself; a lane of
    another store hears none of them."""
    one, two = Recording(), Recording()
    sinks: dict[tuple[str, str], AttemptSink] = {("shop", "bq1"): one, ("shop", "bq2"): two}
    made = Attempt("shop", "x", "webhook", "e", 1, "delivered", 200, "ok", 1.0, 0.0)
    for lane in (("shop", "hook"), ("shop", "bq1"), ("shop", "bq2")):
        observe = observer_for(sinks, lane)
        assert observe is not None
        observe(made)
    assert (len(one.seen), len(two.seen)) == (2, 2)
    assert observer_for(sinks, ("other", "hook")) is None
