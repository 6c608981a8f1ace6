"""An event consent stripped of every identifier a platform needs is skipped, not dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dispatch_kit import NO_JITTER, Lanes, delivered_ids, run_until

from destinations.webhook import WebhookConfig, WebhookDestination
from router import codec
from router.clock import FakeClock
from router.destination import MissingIdentity
from router.dispatch import LaneDispatcher
from router.event import Event
from router.http import HttpClient
from router.metrics import Metrics
from router.outbox.base import NewEvent
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event
from router.testing.fake_platform import FakePlatform


class NeedsEmail(WebhookDestination):
    """A webhook that, like Spotify or Meta, cannot match an event without an email."""

    def map(self, event: Event) -> dict[str, Any]:
        if not event.emails:
            raise MissingIdentity("no_user_identifier", "needs an email to match the event")
        return super().map(event)


@pytest.fixture
async def lanes() -> AsyncIterator[Lanes]:
    runner = Lanes()
    yield runner
    await runner.stop()


async def test_an_event_consent_stripped_of_identity_is_skipped_and_counted(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """Routed without user data and left with nothing to match on, an event is settled as
    skipped (counted skipped_consent with the destination's reason), never dead-lettered; the
    same gap in an event the sender sent without identity still dead-letters it."""
    metrics = Metrics()
    destination = NeedsEmail(WebhookConfig(url=platform.url + "/hook"), http)
    lane = LaneDispatcher(outbox, "shop", "hook", destination, NO_JITTER, clock, metrics=metrics)
    lanes.start(lane)
    events = [
        ("stripped", ("hook!",), make_event(event_id="stripped")),
        ("bare", ("hook",), make_event(event_id="bare", emails=())),
        ("whole", ("hook",), make_event(event_id="whole")),
    ]
    await outbox.append(
        [NewEvent("shop", i, clock.now(), r, codec.encode(e)) for i, r, e in events]
    )
    await run_until(lambda: delivered_ids(platform) == ["whole"], clock)
    for _ in range(200):
        if metrics.deliveries[("shop", "hook", "dead")] and metrics.skipped_consent:
            break
        await asyncio.sleep(0.01)
    [dead] = await outbox.dead_letters("shop")
    assert (dead.event_id, dead.reason) == ("bare", "no_user_identifier")
    assert metrics.skipped_consent == {("shop", "hook", "no_user_identifier"): 1}
    assert metrics.deliveries == {("shop", "hook", "delivered"): 1, ("shop", "hook", "dead"): 1}
    assert await outbox.next_due("shop", "hook") is None  # nothing left to retry
    labels = b'destination="hook",reason="no_user_identifier",store="shop"'
    assert b"tagless_events_skipped_consent_total{" + labels + b"} 1.0" in metrics.exposition()
