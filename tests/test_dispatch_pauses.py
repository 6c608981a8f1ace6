"""A paused destination rests no longer than max_pause_secs, and one outage lengthens it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from dispatch_kit import NO_JITTER, Lanes, append, delivered_ids, run_until, wait_for, webhook_lane

from destinations.webhook import WebhookConfig
from router.app import retry_policy
from router.clock import FakeClock
from router.config import load_config
from router.destination import DELIVERED, Destination, Outcome
from router.dispatch import LaneDispatcher
from router.event import Event
from router.http import HttpClient
from router.outbox.policy import RetryPolicy
from router.outbox.sqlite import SqliteOutbox
from router.testing.fake_platform import Answer, FakePlatform

FAR_FUTURE_DATE = "Fri, 31 Dec 2100 23:59:59 GMT"


@pytest.fixture
async def lanes() -> AsyncIterator[Lanes]:
    runner = Lanes()
    yield runner
    await runner.stop()


async def nothing_dead(outbox: SqliteOutbox, destination: str = "hook") -> bool:
    """True once every write is done and no event of ``destination`` is dead."""
    await wait_for(lambda: outbox.writer.unfinished == 0)
    [status] = await outbox.status("shop", [destination])
    return status.dead == 0 and await outbox.dead_letters("shop") == []


@pytest.mark.parametrize("told", ["100000", FAR_FUTURE_DATE])
async def test_a_huge_retry_after_rests_the_destination_for_the_cap_and_kills_nothing(
    told: str,
    outbox: SqliteOutbox,
    http: HttpClient,
    platform: FakePlatform,
    clock: FakeClock,
    lanes: Lanes,
) -> None:
    """429 with a Retry-After of 100,000 s (or a date in 2100) rests the destination for exactly
    max_pause_secs, then the next batch probes the platform; no event is dead-lettered, not even
    after more throttled tries than max_attempts, and all arrive once the platform is healthy."""
    platform.default = Answer(429, headers={"Retry-After": told})
    ids = [f"e{i}" for i in range(50)]
    await append(outbox, ids)
    policy = RetryPolicy(max_attempts=2, jitter=lambda top: top)
    lane = lanes.start(
        webhook_lane(outbox, http, platform.url, clock, policy=policy, max_batch_size=10)
    )
    for _ in range(3):
        await wait_for(lambda: lane.paused_until > clock.now())
        assert lane.paused_until == clock.now() + 300.0
        assert await nothing_dead(outbox)
        sent = len(platform.requests)
        clock.advance(299.0)
        await asyncio.sleep(0.05)
        assert len(platform.requests) == sent, "sent inside the pause"
        clock.advance(1.0)  # the cap ends: the next batch is the probe
    await wait_for(lambda: len(platform.requests) == 4)

    platform.default = Answer(200)
    await run_until(lambda: len(delivered_ids(platform)) == 50, clock, step=5.0)
    assert sorted(delivered_ids(platform)) == sorted(ids)
    assert await nothing_dead(outbox)


async def test_a_destination_retry_override_sets_its_own_pause_cap(
    tmp_path: Path,
    outbox: SqliteOutbox,
    http: HttpClient,
    platform: FakePlatform,
    clock: FakeClock,
    lanes: Lanes,
) -> None:
    """`retry: {max_pause_secs: 5}` on a destination rests it 5 s after a huge Retry-After,
    and its throttled events are due again when those 5 s end."""
    (tmp_path / "stores").mkdir()
    (tmp_path / "tagless.yaml").write_text("admin: {token: admin-token-1234567890}\n")
    (tmp_path / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [shop-key]\ndestinations:\n"
        f"  - {{id: hook, type: webhook, url: '{platform.url}/hook',"
        " retry: {max_pause_secs: 5}}\n"
    )
    config = load_config(tmp_path, {"webhook": WebhookConfig}, {})
    settings = config.stores[0].destinations[0]
    assert (settings.retry.max_pause_secs, config.delivery.max_pause_secs) == (5.0, 300.0)
    policy = retry_policy(settings.retry)
    platform.script(Answer(429, headers={"Retry-After": "100000"}))
    await append(outbox, ["a"])
    lane = lanes.start(webhook_lane(outbox, http, platform.url, clock, policy=policy))

    await wait_for(lambda: lane.paused_until > clock.now())
    assert lane.paused_until == clock.now() + 5.0
    for _ in range(200):  # the pause is noted at the answer; the event's retry row at its settle
        if (due := await outbox.next_due("shop", "hook")) is not None:
            break
        await asyncio.sleep(0.005)
    assert due == clock.now() + 5.0
    clock.advance(5.0)
    await wait_for(lambda: delivered_ids(platform) == ["a"])


class Gate(Destination[None]):
    """A platform that holds every request until the test answers all waiting ones at once."""

    name = "gate"
    config_class = object

    def __init__(self, batch_size: int) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.waiting: list[asyncio.Future[Outcome]] = []
        self.answer: Outcome | None = None  # when set, requests are answered at once
        self.delivered: list[str] = []

    @property
    def max_batch_size(self) -> int:
        return self.batch_size

    def map(self, event: Event) -> str:
        return event.event_id

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        outcome = self.answer
        if outcome is None:
            self.waiting.append(asyncio.get_running_loop().create_future())
            outcome = await self.waiting[-1]
        if outcome.kind == "delivered":
            self.delivered.extend(batch)
        return [outcome] * len(batch)

    def answer_waiting(self, outcome: Outcome, count: int | None = None) -> None:
        """Answer the first ``count`` waiting requests (all by default) with ``outcome``."""
        count = len(self.waiting) if count is None else count
        answered, self.waiting = self.waiting[:count], self.waiting[count:]
        for request in answered:
            request.set_result(outcome)


async def test_batches_failing_together_lengthen_the_rest_one_step(
    outbox: SqliteOutbox, clock: FakeClock, lanes: Lanes
) -> None:
    """Four batches in flight that time out together are one failure of one outage: the rest
    grows one step per round of probes (1, 2, 4 s, not 1 to 32 s at once), and the backlog
    drains once the platform answers again, with no event dead."""
    gate = Gate(batch_size=5)
    ids = [f"e{i}" for i in range(100)]
    await append(outbox, ids, routes=("gate",))
    lane = lanes.start(
        LaneDispatcher(outbox, "shop", "gate", gate, NO_JITTER, clock, concurrency=4)
    )
    retried = lane.metrics.deliveries
    rests = []
    for round_ in range(1, 4):
        await wait_for(lambda: len(gate.waiting) == 4)
        gate.answer_waiting(Outcome("retry", "timeout"))
        await wait_for(lambda: retried[("shop", "gate", "retry")] == 20 * round_)  # noqa: B023
        rests.append(lane.paused_until - clock.now())
        clock.advance(rests[-1])
    assert rests == [1.0, 2.0, 4.0]

    gate.answer = DELIVERED
    gate.answer_waiting(DELIVERED)
    await run_until(lambda: len(gate.delivered) == 100, clock, step=1.0)
    assert sorted(gate.delivered) == sorted(ids)
    assert await nothing_dead(outbox, "gate")


async def test_a_batch_sent_before_a_rest_can_still_extend_it_by_its_retry_after(
    outbox: SqliteOutbox, clock: FakeClock, lanes: Lanes
) -> None:
    """A 429 without a wait rests the destination 1 s; a batch sent before that rest began
    does not lengthen it as a new failure, but its own Retry-After of 60 s is honoured."""
    gate = Gate(batch_size=5)
    await append(outbox, [f"e{i}" for i in range(10)], routes=("gate",))
    lane = lanes.start(
        LaneDispatcher(outbox, "shop", "gate", gate, NO_JITTER, clock, concurrency=2)
    )
    await wait_for(lambda: len(gate.waiting) == 2)
    gate.answer_waiting(Outcome("retry", "http_429", 429, pause=True), count=1)
    await wait_for(lambda: lane.paused_until > clock.now())
    assert lane.paused_until == clock.now() + 1.0
    gate.answer_waiting(Outcome("retry", "http_429", 429, pause=True))
    await asyncio.sleep(0.05)
    assert lane.paused_until == clock.now() + 1.0, "a batch from before the rest lengthened it"
    await append(outbox, ["late"], routes=("gate",))  # keeps the lane busy after the rest
    clock.advance(1.0)
    await wait_for(lambda: len(gate.waiting) == 2)
    gate.answer_waiting(Outcome("retry", "http_429", 429, pause=True), count=1)
    await wait_for(lambda: lane.paused_until > clock.now())
    assert lane.paused_until == clock.now() + 2.0
    gate.answer_waiting(Outcome("retry", "http_429", 429, retry_after=60.0, pause=True))
    await wait_for(lambda: lane.paused_until == clock.now() + 60.0)
