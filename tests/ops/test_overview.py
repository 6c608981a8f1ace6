"""The overview's API: per destination over a window, received, routed, delivered, filtered,
skipped by consent, latency and the queue; a paused destination with its reason; the outbox's
disk use and retention; windows bound by time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ops_kit import STORE, admin_get, eventually, message, start

from router import codec
from router.outbox.base import NewEvent
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event
from router.testing.fake_platform import Answer, FakePlatform, Recorded
from router.testing.server import RunningTagless

#: The operations store and a webhook that its consent policy skips on a denial.
AUDITED = (
    STORE
    + """\
  - id: audit
    type: webhook
    url: "{url}/audit"
    consent: {{denied: skip}}
"""
)
#: OneTrust's targeting group refused: ad_user_data denied.
DENIED = {"consent": {"categoryPreferences": {"C0001": True, "C0004": False}}}


@pytest.fixture
async def three(tmp_path: Path, platform: FakePlatform) -> AsyncIterator[RunningTagless]:
    server = await start(tmp_path, AUDITED, platform.url)
    yield server
    await server.stop()


async def overview(running: RunningTagless, window: str = "1h") -> dict[str, Any]:
    status, answer, _ = await admin_get(running, "/api/overview", window=window)
    assert status == 200, answer
    found: dict[str, Any] = answer
    return found


def lanes(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [store] = found["stores"]
    return {d["id"]: d for d in store["destinations"]}


async def test_each_destination_counts_what_it_got_and_why_not(
    three: RunningTagless, platform: FakePlatform
) -> None:
    """A purchase, a purchase whose customer denied ad data, a lead: Spotify delivers two and
    skips the denied one (nothing left to match on); the leads webhook takes only the lead
    (two filtered); the audit webhook skips the denied purchase by its consent policy."""
    denied = message("m-2")
    denied["context"] |= DENIED
    batch = [message("m-1"), denied, message("m-3", event="Lead Generated")]
    status, _ = await three.post("/v1/batch", {"batch": batch}, key="shop-key")
    assert status == 200

    async def settled() -> dict[str, Any] | None:
        found = await overview(three)
        by_id = lanes(found)
        done = by_id["spotify"]["delivered"] + by_id["spotify"]["skipped_consent"] == 3
        done = done and by_id["leads"]["delivered"] == 1 and by_id["audit"]["delivered"] == 2
        return found if done else None

    found = await eventually(settled)
    by_id = lanes(found)
    counted = {
        dest: {k: by_id[dest][k] for k in ("received", "routed", "delivered", "filtered",
                                           "skipped_consent", "retrying", "dead", "depth")}
        for dest in by_id
    }  # fmt: skip
    assert counted == {
        "spotify": {"received": 3, "routed": 3, "delivered": 2, "filtered": 0,
                    "skipped_consent": 1, "retrying": 0, "dead": 0, "depth": 0},
        "leads": {"received": 3, "routed": 1, "delivered": 1, "filtered": 2,
                  "skipped_consent": 0, "retrying": 0, "dead": 0, "depth": 0},
        "audit": {"received": 3, "routed": 2, "delivered": 2, "filtered": 0,
                  "skipped_consent": 1, "retrying": 0, "dead": 0, "depth": 0},
    }  # fmt: skip
    spotify = by_id["spotify"]
    assert spotify["type"] == "spotify_capi"
    assert spotify["latency_ms"]["p50"] is not None
    assert spotify["latency_ms"]["p95"] >= spotify["latency_ms"]["p50"]
    assert (spotify["paused"], spotify["oldest_pending_age_s"]) == (None, None)
    assert found["window"] == "1h" and found["generated_at"] > 0
    assert found["outbox"]["disk_bytes"] > 0
    assert found["outbox"]["path"].endswith("tagless.db")
    assert found["retention"] == {
        "pii_retention_hours": 72.0,
        "retention_hours": 168.0,
        "dead_letter_retention_hours": 720.0,
        "attempts_retention_hours": 168.0,
        "attempts_max_rows": 1_000_000,
    }
    assert found["config"] == {"last_reload": None}


async def test_a_paused_destination_shows_its_reason_and_until_when(
    three: RunningTagless, platform: FakePlatform
) -> None:
    """Spotify answers 429 with Retry-After: the overview shows it paused with the reason and
    until when, the event waiting (depth, its age) and the 429 not counted as delivered."""

    def busy(seen: Recorded) -> Answer | None:
        if seen.path.startswith("/capi-direct"):
            return Answer(429, {"message": "slow down"}, headers={"Retry-After": "120"})
        return None

    platform.responder = busy
    await three.post("/v1/track", message("m-1"), key="shop-key")

    async def paused() -> dict[str, Any] | None:
        spotify = lanes(await overview(three))["spotify"]
        return spotify if spotify["paused"] is not None and spotify["depth"] else None

    spotify = await eventually(paused)
    assert spotify["paused"]["reason"]
    assert spotify["paused"]["until"] > three.app.clock.now() + 60
    assert spotify["delivered"] == 0 and spotify["depth"] == 1
    assert spotify["oldest_pending_age_s"] is not None and spotify["oldest_pending_age_s"] >= 0


async def test_a_window_must_be_one_of_the_three(three: RunningTagless) -> None:
    """1h, 24h and 7d answer; anything else is a 400 naming them."""
    for window in ("1h", "24h", "7d"):
        assert (await overview(three, window))["window"] == window
    status, answer, _ = await admin_get(three, "/api/overview", window="30d")
    assert status == 400 and answer["error"] == "window '30d' is not one of 1h, 24h, 7d"


async def test_the_window_starts_at_the_first_event_received_in_it(
    outbox: SqliteOutbox,
) -> None:
    """Events received at 100, 200, 300 and 400: a window from 250 starts at the third and
    counts two; one from before them all counts four; one after them, none."""
    for at, event_id in ((100.0, "a"), (200.0, "b"), (300.0, "c"), (400.0, "d")):
        body = codec.encode(make_event(event_id=event_id))
        await outbox.append([NewEvent("shop", event_id, at, ("hook",), body)])
    insight = outbox.insight
    assert await insight.first_id_since("events", 250.0) == 3
    assert await insight.routes_since("shop", 3) == [(" hook ", 2)]
    assert await insight.routes_since("shop", await insight.first_id_since("events", 0.0)) == [
        (" hook ", 4)
    ]
    assert await insight.routes_since("shop", await insight.first_id_since("events", 500.0)) == []
