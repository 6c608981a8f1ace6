"""GA4 delivery: one request per client, age limit, status and validation answers as outcomes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from destinations.ga4 import Ga4Config, Ga4Destination
from destinations.ga4.client import HEALTH_BODY, group_requests
from router import codec
from router.event import Item
from router.http import HttpClient
from router.secret import Secret
from router.testing.events import make_event
from router.testing.fake_platform import Answer, FakePlatform


def destination(url: str, http: HttpClient, **settings: Any) -> Ga4Destination:
    config = Ga4Config(
        measurement_id="G-TEST1234", api_secret=Secret("s3cret"), endpoint=url, **settings
    )
    return Ga4Destination(config, http)


def recent(**overrides: Any) -> Any:
    """A purchase from a minute ago, any field overridable."""
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return make_event(occurred_at=moment, received_at=moment, **overrides)


async def test_delivers_to_collect_with_stream_and_secret(
    ga4: FakePlatform, http: HttpClient
) -> None:
    """A 204 from /mp/collect delivers; the stream and secret travel as query parameters."""
    dest = destination(ga4.url, http)
    outcomes = await dest.send([dest.map(recent())])
    assert [o.kind for o in outcomes] == ["delivered"]
    [request] = ga4.requests
    assert request.path == "/mp/collect"
    assert request.query == {"measurement_id": "G-TEST1234", "api_secret": "s3cret"}
    assert request.json()["events"][0]["name"] == "purchase"


async def test_a_batch_becomes_one_request_per_client(ga4: FakePlatform, http: HttpClient) -> None:
    """Events of two clients go in two requests; outcomes come back in batch order."""
    dest = destination(ga4.url, http)
    clients = ["1.1", "2.2", "1.1", "2.2", "1.1"]
    batch = [dest.map(recent(ga_client_id=c, order_id=f"o-{i}")) for i, c in enumerate(clients)]
    outcomes = await dest.send(batch)
    assert [o.kind for o in outcomes] == ["delivered"] * 5
    sent = {r.json()["client_id"]: r.json()["events"] for r in ga4.requests}
    assert sorted(sent) == ["1.1", "2.2"]
    assert [e["params"]["transaction_id"] for e in sent["1.1"]] == ["o-0", "o-2", "o-4"]


async def test_a_send_takes_a_pipeline_of_events_and_each_request_keeps_the_limit(
    ga4: FakePlatform, http: HttpClient
) -> None:
    """The outbox hands a send a pipeline's worth of events (one claim, one commit); one
    client's events among them still go at most ``max_batch_size`` to a request. With
    ``validate`` (a validation call per request, all at once) a send is one request's worth."""
    dest = destination(ga4.url, http, max_batch_size=10)
    assert dest.max_batch_size == 128
    assert destination(ga4.url, http, max_batch_size=10, validate=True).max_batch_size == 10
    batch = [dest.map(recent(ga_client_id="1.1", order_id=f"o-{n}")) for n in range(25)]
    batch += [dest.map(recent(ga_client_id=f"{n}.2")) for n in range(103)]
    outcomes = await dest.send(batch)
    assert [o.kind for o in outcomes] == ["delivered"] * 128
    one_client = [r.json()["events"] for r in ga4.requests if r.json()["client_id"] == "1.1"]
    assert sorted(len(events) for events in one_client) == [5, 10, 10]
    assert len(ga4.requests) == 3 + 103


def test_requests_stay_within_25_events_and_130_kb(http: HttpClient) -> None:
    """One client's events are split at 25 per request and before a body reaches 130 kB."""
    dest = destination("http://127.0.0.1:9", http)
    many = [dest.map(recent(ga_client_id="1.1")) for _ in range(30)]
    assert [len(i) for i, _ in group_requests(many, 25)] == [25, 5]
    items = tuple(Item(id=f"SKU-{n}", name="n" * 100) for n in range(200))
    big = [dest.map(recent(ga_client_id="1.1", items=items)) for _ in range(6)]
    requests = group_requests(big, 25)
    assert len(requests) > 1
    assert all(len(codec.dumps(body)) < 130_000 for _, body in requests)
    assert [i for indices, _ in requests for i in indices] == list(range(6))


async def test_events_older_than_72_hours_are_rejected_unsent(
    ga4: FakePlatform, http: HttpClient
) -> None:
    """An event past max_age_hours is rejected as too_old before any request."""
    dest = destination(ga4.url, http)
    old = make_event(occurred_at=datetime.now(UTC) - timedelta(hours=73))
    dest.now = time.time
    outcomes = await dest.send([dest.map(old), dest.map(recent(ga_client_id="9.9"))])
    assert [(o.kind, o.reason) for o in outcomes] == [("rejected", "too_old"), ("delivered", "ok")]
    assert [r.json()["client_id"] for r in ga4.requests] == ["9.9"]


async def test_the_age_limit_uses_the_injected_clock(ga4: FakePlatform, http: HttpClient) -> None:
    """With now() moved 80 hours ahead, a fresh event is too old."""
    dest = destination(ga4.url, http)
    dest.now = lambda: time.time() + 80 * 3600
    [outcome] = await dest.send([dest.map(recent())])
    assert outcome.reason == "too_old"
    assert ga4.requests == []


@pytest.mark.parametrize(
    ("status", "kind", "pause"),
    [
        (204, "delivered", False),
        (200, "delivered", False),
        (400, "rejected", False),
        (404, "rejected", False),
        (401, "retry", True),
        (403, "retry", True),
        (429, "retry", True),
        (500, "retry", False),
        (503, "retry", False),
        (501, "rejected", False),
    ],
)
async def test_collect_statuses_are_classified_by_the_shared_policy(
    platform: FakePlatform, http: HttpClient, status: int, kind: str, pause: bool
) -> None:
    """/mp/collect statuses go through router.http.classify: 2xx delivered, 5xx/429 retry."""
    platform.default = Answer(status, b"")
    dest = destination(platform.url, http)
    outcomes = await dest.send([dest.map(recent()), dest.map(recent(ga_client_id="7.7"))])
    assert {(o.kind, o.pause) for o in outcomes} == {(kind, pause)}


async def test_unreachable_endpoint_is_a_retry(http: HttpClient) -> None:
    """A refused connection retries with the transport reason."""
    dest = destination("http://127.0.0.1:9", http)
    [outcome] = await dest.send([dest.map(recent())])
    assert (outcome.kind, outcome.reason) == ("retry", "connect_failed")


async def test_validation_messages_reject_only_the_bad_event(
    ga4: FakePlatform, http: HttpClient
) -> None:
    """With validate, a request failing validation is re-checked per event; good ones are sent."""
    dest = destination(ga4.url, http, validate=True)
    good = dest.map(recent(order_id="good"))
    bad = dest.map(recent(order_id="bad"))
    bad["events"][0]["params"]["engagement_time_msec"] = 0
    outcomes = await dest.send([good, bad])
    assert [(o.kind, o.reason) for o in outcomes] == [
        ("delivered", "ok"),
        ("rejected", "validation_failed"),
    ]
    assert "engagement_time_msec must be >= 1" in outcomes[1].detail
    assert "VALUE_INVALID" in outcomes[1].detail
    collected = [r.json() for r in ga4.requests if r.path == "/mp/collect"]
    assert [e["params"]["transaction_id"] for r in collected for e in r["events"]] == ["good"]


async def test_a_request_level_validation_failure_rejects_each_event(
    ga4: FakePlatform, http: HttpClient
) -> None:
    """A bad hash in user_data fails every event of its request, each with the message."""
    dest = destination(ga4.url, http, validate=True)
    batch = [dest.map(recent()), dest.map(recent())]
    for payload in batch:
        payload["user_data"]["sha256_email_address"] = ["NOT-A-HASH"]
    outcomes = await dest.send(batch)
    assert {(o.kind, o.reason) for o in outcomes} == {("rejected", "validation_failed")}
    assert not [r for r in ga4.requests if r.path == "/mp/collect"]


@pytest.mark.parametrize(
    ("answer", "kind", "reason"),
    [
        (Answer(503, b"busy"), "retry", "http_503"),
        (Answer(200, b"<html>"), "retry", "validation_unreadable"),
        (Answer(200, {"validationMessages": []}), "delivered", "ok"),
    ],
)
async def test_validation_server_answers_become_outcomes(
    ga4: FakePlatform, http: HttpClient, answer: Answer, kind: str, reason: str
) -> None:
    """The validation call's own failures retry; an empty message list lets the event through."""
    ga4.script(answer)
    dest = destination(ga4.url, http, validate=True)
    [outcome] = await dest.send([dest.map(recent())])
    assert (outcome.kind, outcome.reason) == (kind, reason)


async def test_send_test_uses_only_the_validation_server(
    ga4: FakePlatform, http: HttpClient
) -> None:
    """send_test posts to /debug/mp/collect and reports the messages; nothing is collected."""
    dest = destination(ga4.url, http)
    good = await dest.send_test([dest.map(recent())])
    assert (good.ok, good.status, good.messages) == (True, 200, ())
    bad_payload = dest.map(recent())
    bad_payload["events"][0]["name"] = "session_start"
    bad = await dest.send_test([bad_payload])
    assert not bad.ok
    assert bad.messages == ("NAME_RESERVED at events[0]: Event name [session_start] is reserved.",)
    assert {r.path for r in ga4.requests} == {"/debug/mp/collect"}


async def test_health_posts_an_empty_request(ga4: FakePlatform, http: HttpClient) -> None:
    """health() sends no event data: an empty events list to the validation server."""
    health = await destination(ga4.url, http).health()
    assert health.ok
    [request] = ga4.requests
    assert (request.path, request.json()) == ("/debug/mp/collect", HEALTH_BODY)


async def test_health_fails_when_unreachable(http: HttpClient) -> None:
    """An endpoint that does not answer is unhealthy, with the reason."""
    health = await destination("http://127.0.0.1:9", http).health()
    assert not health.ok
    assert health.detail.startswith("connect_failed")
