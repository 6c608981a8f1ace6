"""A paused destination rests no longer than max_pause_secs and loses no event to the wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dispatch_kit import Lanes, append, delivered_ids, run_until, wait_for, webhook_lane

from destinations.webhook import WebhookConfig
from router.app import retry_policy
from router.clock import FakeClock
from router.config import load_config
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
    assert await outbox.next_due("shop", "hook") == clock.now() + 5.0
    clock.advance(5.0)
    await wait_for(lambda: delivered_ids(platform) == ["a"])
