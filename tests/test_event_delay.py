"""A wait the platform sets for one event (Google's TOO_RECENT_EVENT) delays that event only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from dispatch_kit import Lanes, append, run_until, wait_for

from router.clock import FakeClock
from router.destination import DELIVERED, Destination, Outcome
from router.dispatch import LaneDispatcher
from router.event import Event
from router.outbox.policy import RetryPolicy
from router.outbox.sqlite import SqliteOutbox

SIX_HOURS = 6 * 3600.0
TOO_RECENT = Outcome("retry", "TOO_RECENT_EVENT", 200, SIX_HOURS, event_delay=True)


class TooRecent(Destination[None]):
    """Answers TOO_RECENT_EVENT for the events named in ``recent``, delivers the rest."""

    name = "ads"
    config_class = object

    def __init__(self, recent: set[str]) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]
        self.recent = recent
        self.sent: list[tuple[float, str]] = []
        self.clock: FakeClock | None = None

    @property
    def max_batch_size(self) -> int:
        return 10

    def map(self, event: Event) -> str:
        return event.event_id

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        assert self.clock is not None
        self.sent += [(self.clock.now(), event_id) for event_id in batch]
        return [TOO_RECENT if event_id in self.recent else DELIVERED for event_id in batch]


@pytest.fixture
async def lanes() -> AsyncIterator[Lanes]:
    runner = Lanes()
    yield runner
    await runner.stop()


def test_an_event_delay_is_not_capped_by_max_pause_secs() -> None:
    """The policy schedules a per-event wait as asked (within max_age), a platform wait capped."""
    policy = RetryPolicy(max_age_secs=86_400.0, max_pause_secs=300.0)
    own = policy.decide(
        attempts=1, received_at=0.0, now=10.0, retry_after=SIX_HOURS, event_delay=True
    )
    platform = policy.decide(attempts=1, received_at=0.0, now=10.0, retry_after=SIX_HOURS)
    assert (own.due_at, platform.due_at) == (10.0 + SIX_HOURS, 310.0)
    late = policy.decide(
        attempts=1, received_at=0.0, now=80_000.0, retry_after=SIX_HOURS, event_delay=True
    )
    assert late.due_at == 86_400.0  # the last moment inside the event's age limit


async def test_too_recent_events_wait_six_hours_while_the_destination_goes_on(
    outbox: SqliteOutbox, clock: FakeClock, lanes: Lanes
) -> None:
    """A batch answered TOO_RECENT_EVENT throughout does not pause the destination: later events
    go out at once, and the delayed ones are sent again six hours later, then delivered."""
    ads = TooRecent({"old-1", "old-2"})
    ads.clock = clock
    start = clock.now()
    policy = RetryPolicy(max_attempts=8, max_age_secs=86_400.0, jitter=lambda top: top)
    lane = lanes.start(LaneDispatcher(outbox, "shop", "ads", ads, policy, clock, concurrency=1))
    await append(outbox, ["old-1", "old-2"], routes=("ads",))
    await wait_for(lambda: len(ads.sent) == 2)
    await wait_for(lambda: outbox.writer.unfinished == 0)
    assert lane.paused_until <= clock.now()
    await append(outbox, ["new-1"], routes=("ads",))
    await wait_for(lambda: "new-1" in [event_id for _, event_id in ads.sent])
    assert [at for at, event_id in ads.sent if event_id == "new-1"] == [start]
    ads.recent.clear()
    await run_until(lambda: len(ads.sent) == 5, clock, step=60.0)
    retried = {event_id: at for at, event_id in ads.sent[3:]}
    assert set(retried) == {"old-1", "old-2"}
    assert all(SIX_HOURS <= at - start < SIX_HOURS + 600.0 for at in retried.values())
    for _ in range(200):  # the retried batch settles after its send
        [status] = await outbox.status("shop", ["ads"])
        if status.retrying == 0:
            break
        await asyncio.sleep(0.005)
    assert (status.retrying, status.dead) == (0, 0)
