"""A store's dispatchers decode each stored event once and share it, never serving an event
from before its erasure."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from dispatch_kit import NO_JITTER, Lanes, delivered_ids, run_until

from destinations.webhook import WebhookConfig, WebhookDestination
from router import codec
from router.clock import FakeClock
from router.decoded import DecodedEvents
from router.destination import Destination
from router.dispatch import LaneDispatcher
from router.event import Event
from router.http import HttpClient
from router.outbox.base import NewEvent
from router.outbox.erasure import Identity
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event
from router.testing.fake_platform import FakePlatform

EMAIL = "erase.me@example.org"


class EventHook(WebhookDestination):
    """A webhook that maps decoded events (the default ``map_stored``), as most platforms do."""

    map_stored = Destination.map_stored


@pytest.fixture
async def lanes() -> AsyncIterator[Lanes]:
    runner = Lanes()
    yield runner
    await runner.stop()


def hook_lane(
    outbox: SqliteOutbox,
    http: HttpClient,
    platform: FakePlatform,
    clock: FakeClock,
    dest_id: str,
    decoded: DecodedEvents,
) -> LaneDispatcher:
    destination = EventHook(WebhookConfig(url=platform.url + "/" + dest_id), http)
    return LaneDispatcher(
        outbox, "shop", dest_id, destination, NO_JITTER, clock, concurrency=1, decoded=decoded
    )


def joined(*names: frozenset[str] | None, size: int = 100) -> DecodedEvents:
    """A cache joined by a dispatcher of ``shop`` per ``names`` (None: every event)."""
    decoded = DecodedEvents(size=size)
    for taken in names:
        decoded.join("shop", taken)
    return decoded


def test_an_event_is_decoded_once_for_the_same_bytes_then_dropped_once_all_had_it() -> None:
    decoded = joined(None, None, frozenset({"purchase"}))
    body = codec.encode(make_event(event_id="a"))
    first = decoded.event("shop", 1, body)
    assert first == codec.decode(body)
    assert decoded.event("shop", 1, bytes(body)) is first  # another dispatcher's read of it
    assert len(decoded) == 1
    assert decoded.event("shop", 1, body) is first  # the third and last that takes purchases
    assert len(decoded) == 0
    assert decoded.event("shop", 1, body) is not first  # a retry later: decoded afresh


def test_an_event_only_one_dispatcher_takes_is_not_kept() -> None:
    decoded = joined(None, frozenset({"purchase"}))
    page_view = codec.encode(make_event(event_id="p", name="page_view"))
    decoded.event("shop", 1, page_view)
    assert len(decoded) == 0
    purchase = codec.encode(make_event(event_id="b"))
    first = decoded.event("shop", 2, purchase)
    assert decoded.event("other", 2, purchase) is not first  # seqs are per outbox and store
    assert len(decoded) == 1


def test_other_bytes_under_the_same_seq_are_decoded_afresh() -> None:
    """An erased (or retention-stripped) event reads back with other bytes: its old decoding
    is never served."""
    decoded = joined(None, None, None)
    before = make_event(event_id="a", emails=(EMAIL,))
    decoded.event("shop", 1, codec.encode(before))
    after = codec.encode(make_event(event_id="a"))
    event = decoded.event("shop", 1, after)
    assert event == codec.decode(after) and EMAIL not in event.emails
    assert decoded.event("shop", 1, after) is event


def test_the_cache_holds_at_most_its_size_dropping_the_oldest() -> None:
    decoded = joined(None, None, size=2)
    bodies = [codec.encode(make_event(event_id=str(seq))) for seq in range(3)]
    first = decoded.event("shop", 0, bodies[0])
    second = decoded.event("shop", 1, bodies[1])
    decoded.event("shop", 2, bodies[2])
    assert len(decoded) == 2
    assert decoded.event("shop", 1, bodies[1]) is second
    assert decoded.event("shop", 0, bodies[0]) is not first  # dropped: decoded again
    with pytest.raises(ValueError, match="at least 1"):
        DecodedEvents(size=0)


def test_an_evicted_event_decoded_again_is_kept_only_for_the_dispatchers_still_to_come() -> None:
    """Three dispatchers a backlog apart: events 0 and 1 are evicted after the first had them;
    decoded again by the second, each is kept for the third alone and goes once the third had
    it (counted afresh, it waited for two more dispatchers and stayed until evicted)."""
    decoded = joined(None, None, None, size=2)
    bodies = [codec.encode(make_event(event_id=str(seq))) for seq in range(4)]
    for seq in (0, 1, 2, 3):  # the first dispatcher; 2 and 3 evict 0 and 1
        decoded.event("shop", seq, bodies[seq])
    decoded.event("shop", 0, bodies[0])  # the second (a miss): 0 is kept for the third
    assert len(decoded) == 2  # 0 and 3 (2 went to make room, remembered)
    third_sees = decoded.event("shop", 0, bodies[0])  # the third: a hit, and the last
    assert len(decoded) == 1
    again = decoded.event("shop", 1, bodies[1])  # the second: decoded again, kept for the third
    assert decoded.event("shop", 1, bodies[1]) is again
    assert third_sees == codec.decode(bodies[0])
    assert len(decoded) == 1  # 3 only: 1 went with its last dispatcher


async def test_lanes_of_a_store_share_decoding_and_an_erased_event_is_never_served_from_it(
    outbox: SqliteOutbox, http: HttpClient, platform: FakePlatform, clock: FakeClock, lanes: Lanes
) -> None:
    """Lane ``a`` decodes three events, one of them Jane's; Jane is erased; then lane ``b``
    runs: her event no longer goes to it, and a backfill making it due there again (a retry
    read back with its scrubbed bytes) sends the scrubbed event, not the decoding ``a`` left
    in the shared cache."""
    decoded = DecodedEvents()
    await outbox.append(
        [_new(outbox, "one"), _new(outbox, "jane", emails=(EMAIL,)), _new(outbox, "three")]
    )
    lane_b = hook_lane(outbox, http, platform, clock, "b", decoded)  # joins, starts later
    lanes.start(hook_lane(outbox, http, platform, clock, "a", decoded))
    await run_until(lambda: len(delivered_ids(platform)) == 3, clock)
    jane_seq = 2
    assert len(decoded) == 3  # kept for lane b, which has not had them yet

    done = await outbox.erase("shop", Identity.parse("email", EMAIL))
    assert done.events == 1
    lanes.start(lane_b)
    await run_until(lambda: len(_sent_to(platform, "b")) == 2, clock)
    assert [e["event_id"] for e in _sent_to(platform, "b")] == ["one", "three"]

    assert await outbox.backfill("shop", "b", [(jane_seq, "b")]) == 1
    await run_until(lambda: len(_sent_to(platform, "b")) == 3, clock)
    resent = _sent_to(platform, "b")[-1]
    assert resent["event_id"] == "jane"
    assert EMAIL not in orjson.dumps(resent).decode().lower()


def _new(outbox: SqliteOutbox, event_id: str, **fields: object) -> NewEvent:
    event: Event = make_event(event_id=event_id, **fields)
    return NewEvent("shop", event_id, outbox.clock.now(), ("a", "b"), codec.encode(event))


def _sent_to(platform: FakePlatform, dest_id: str) -> list[dict[str, object]]:
    return [
        event
        for request in platform.requests
        if request.path.endswith("/" + dest_id)
        for event in request.json()["events"]
    ]
