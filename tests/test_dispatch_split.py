"""A batch refused as a whole for one bad event is split until that event is alone, also when
the adapter settled other events of the batch by themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from dispatch_kit import NO_JITTER, Lanes, append, delivered_ids, run_until

from destinations.webhook import WebhookConfig, WebhookDestination
from router.clock import FakeClock
from router.destination import Outcome
from router.dispatch import LaneDispatcher
from router.event import Event
from router.http import HttpClient
from router.outbox.sqlite import SqliteOutbox
from router.testing.fake_platform import Answer, FakePlatform, Recorded


class KeepsOldOnesBack(WebhookDestination):
    """Like Meta: events named ``old-*`` are refused unsent (too old), the rest sent together."""

    def map(self, event: Event) -> dict[str, Any]:
        return {"event_id": event.event_id}

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        fresh = [e for e in batch if not e["event_id"].startswith("old")]
        sent = iter(await super().send(fresh) if fresh else [])
        too_old = Outcome("rejected", "too_old")
        return [too_old if e["event_id"].startswith("old") else next(sent) for e in batch]


async def test_a_batch_refused_for_one_event_is_split_beside_events_refused_unsent(
    outbox: SqliteOutbox, http: HttpClient, clock: FakeClock
) -> None:
    """One poison event among good ones refuses their request as a whole (400), while an old
    event of the same batch was refused unsent: the good events are split out and delivered,
    only the poison and the old event become dead letters (before the fix, every good event of
    the batch was dead-lettered with the poison's reason)."""

    def refuse_poison(seen: Recorded) -> Answer | None:
        ids = {e["event_id"] for e in seen.json()["events"]}
        return Answer(400, {"error": "invalid event"}) if "poison" in ids else None

    lanes = Lanes()
    async with FakePlatform(responder=refuse_poison) as platform:
        destination = KeepsOldOnesBack(WebhookConfig(url=platform.url + "/hook"), http)
        lanes.start(LaneDispatcher(outbox, "shop", "hook", destination, NO_JITTER, clock))
        await append(outbox, ["a", "b", "poison", "old-1", "c", "d"])
        try:
            await run_until(lambda: len(delivered_ids(platform)) == 4, clock)
            for _ in range(200):
                if len(await outbox.dead_letters("shop")) == 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            await lanes.stop()
        dead = {(d.event_id, d.reason) for d in await outbox.dead_letters("shop")}
        assert sorted(delivered_ids(platform)) == ["a", "b", "c", "d"]
        assert dead == {("poison", "http_400"), ("old-1", "too_old")}
