"""Spotify CAPI delivery against a local fake that enforces the documented request rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from destinations.spotify_capi import SpotifyCapiDestination
from router.http import HttpClient
from router.secret import Secret
from router.testing.events import make_event
from router.testing.fake_platform import Answer, FakePlatform
from router.testing.golden import fixture_names, load_fixture

Factory = Callable[..., SpotifyCapiDestination]
TOKEN = "capi-token-abc123"
CONNECTION_ID = "3f2b8c1e-0a4d-4e6f-9b7a-1c2d3e4f5a6b"


async def test_every_fixture_is_accepted_in_one_batch(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """All shared fixtures go out in one request the fake accepts, in Spotify's wrapper."""
    destination = make_destination()
    batch = [destination.map(load_fixture(name)) for name in fixture_names()]
    outcomes = await destination.send(batch)
    assert [o.kind for o in outcomes] == ["delivered"] * len(batch)
    [request] = spotify.requests
    assert (request.status, request.path) == (200, "/capi-direct/events/")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    wrapper = request.json()["conversion_events"]
    assert wrapper["capi_connection_id"] == CONNECTION_ID
    assert [e["event_id"] for e in wrapper["events"]] == [e["event_id"] for e in batch]


async def test_future_event_time_is_sent_as_now(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """An event_time ahead of the clock is clamped to the clock, so Spotify accepts it."""
    destination = make_destination()
    frozen = time.time() - 60
    destination.now = lambda: frozen
    ahead = datetime.now(UTC) + timedelta(hours=1)
    [outcome] = await destination.send([destination.map(make_event(occurred_at=ahead))])
    assert outcome.kind == "delivered"
    sent = spotify.requests[0].json()["conversion_events"]["events"][0]["event_time"]
    assert datetime.fromisoformat(sent).timestamp() == pytest.approx(frozen, abs=0.001)
    assert destination.time_clamped == 1


async def test_past_event_time_is_left_alone(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """A past event_time is sent as mapped."""
    destination = make_destination()
    await destination.send([destination.map(make_event())])
    sent = spotify.requests[0].json()["conversion_events"]["events"][0]["event_time"]
    assert (sent, destination.time_clamped) == ("2026-11-20T14:30:05.123Z", 0)


@pytest.mark.parametrize(
    ("status", "kind", "pause", "whole_batch"),
    [
        (200, "delivered", False, False),
        (400, "rejected", False, True),
        (401, "retry", True, False),
        (403, "retry", True, False),
        (404, "rejected", False, True),
        (408, "retry", False, False),
        (413, "rejected", False, True),
        (422, "rejected", False, True),
        (429, "retry", True, False),
        (500, "retry", False, False),
        (501, "rejected", False, True),
        (502, "retry", False, False),
        (503, "retry", False, False),
    ],
)
async def test_status_classification(
    make_destination: Factory,
    spotify: FakePlatform,
    status: int,
    kind: str,
    pause: bool,
    whole_batch: bool,
) -> None:
    """Each status becomes the shared policy's outcome; every rejection covers the whole batch."""
    spotify.script(Answer(status, {"message": "scripted"}))
    destination = make_destination()
    outcomes = await destination.send([destination.map(make_event()) for _ in range(2)])
    assert len(outcomes) == 2
    assert {(o.kind, o.pause, o.whole_batch) for o in outcomes} == {(kind, pause, whole_batch)}
    if kind != "delivered":
        assert {(o.status, o.reason) for o in outcomes} == {(status, f"http_{status}")}


async def test_retry_after_is_passed_on(make_destination: Factory, spotify: FakePlatform) -> None:
    """A 429 with Retry-After tells the dispatcher how long to rest."""
    spotify.script(Answer(429, {"message": "slow down"}, {"Retry-After": "30"}))
    destination = make_destination()
    [outcome] = await destination.send([destination.map(make_event())])
    assert (outcome.kind, outcome.pause, outcome.retry_after) == ("retry", True, 30.0)


async def test_error_detail_keeps_message_and_trace_id_but_not_the_token(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """The dead-letter detail names Spotify's message and sp_trace_id; an echoed token is masked."""
    body = {"message": f"bad token {TOKEN}", "sp_trace_id": "abc-123", "input": "x" * 5000}
    spotify.script(Answer(400, body))
    destination = make_destination()
    [outcome] = await destination.send([destination.map(make_event())])
    assert outcome.detail == "HTTP 400: message=bad token ***; sp_trace_id=abc-123"


async def test_non_json_error_keeps_a_truncated_excerpt(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """A non-JSON error body is kept as a capped excerpt."""
    spotify.script(Answer(502, b"<html>" + b"x" * 10_000))
    destination = make_destination()
    [outcome] = await destination.send([destination.map(make_event())])
    assert outcome.detail.startswith("HTTP 502: <html>xx")
    assert len(outcome.detail) <= 2048


async def test_fake_refuses_what_spotify_refuses(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """Private IPs, unhashed emails, bad times, bad names and oversized batches get a 400."""
    destination = make_destination()
    destination.now = lambda: 1e11  # a clock far ahead, so the future event_time is not clamped
    good = destination.map(make_event())
    bad_payloads = [
        {**good, "user_data": {"ip_address": "192.168.1.4"}},
        {**good, "user_data": {"hashed_emails": ["jane@example.com"]}},
        {**good, "event_time": "2026-11-20T14:30:05Z"},  # no milliseconds
        {**good, "event_time": "2999-01-01T00:00:00.000Z"},
        {**good, "event_name": "Purchase"},
    ]
    for payload in bad_payloads:
        [outcome] = await destination.send([payload])
        assert (outcome.kind, outcome.status) == ("rejected", 400), payload
    oversized = make_destination(max_batch_size=101)  # one request of 101 events
    oversized.now = destination.now
    outcomes = await oversized.send([good] * 101)
    assert {(o.kind, o.status) for o in outcomes} == {("rejected", 400)}


async def test_a_send_posts_one_request_per_max_batch_size_events(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """The outbox hands a send several requests' worth; each request keeps within the limit
    and each event gets its own request's outcome."""
    destination = make_destination(max_batch_size=10)
    assert destination.max_batch_size == 40
    payloads = [destination.map(make_event(event_id=f"e-{n}")) for n in range(35)]
    payloads[12] = {**payloads[12], "event_name": "Purchase"}  # refused: its request fails
    outcomes = await destination.send(payloads)
    sizes = [len(r.json()["conversion_events"]["events"]) for r in spotify.requests]
    assert sorted(sizes) == [5, 10, 10, 10]  # posted at once: they may arrive in any order
    kinds = [o.kind for o in outcomes]
    assert kinds == ["delivered"] * 10 + ["rejected"] * 10 + ["delivered"] * 15


async def test_wrong_token_pauses_the_destination(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """A token the fake does not know gets 401: retried later, destination paused."""
    destination = make_destination(token=Secret("not-the-token"))
    [outcome] = await destination.send([destination.map(make_event())])
    assert (outcome.kind, outcome.pause, outcome.status) == ("retry", True, 401)
    assert "not-the-token" not in outcome.detail


async def test_unreachable_endpoint_is_a_retry(http: HttpClient, make_destination: Factory) -> None:
    """A refused connection is retried with the transport reason."""
    destination = make_destination(endpoint="http://127.0.0.1:9")
    [outcome] = await destination.send([destination.map(make_event())])
    assert (outcome.kind, outcome.reason) == ("retry", "connect_failed")


async def test_health_and_send_test_send_nothing(
    make_destination: Factory, spotify: FakePlatform
) -> None:
    """Spotify documents no health endpoint or test mode, so neither sends a request."""
    destination = make_destination()
    health = await destination.health()
    answer = await destination.send_test([destination.map(make_event())])
    assert health.ok and "no health endpoint" in health.detail
    assert (answer.ok, answer.answer) == (False, "spotify_capi has no test mode")
    assert spotify.requests == []
