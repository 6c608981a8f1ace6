"""Delivery to a fake Graph API that enforces Meta's rules: request shape, age, hashing, answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from fake_meta import PIXEL, TOKEN, VERSION, FakeMeta, graph_error

from destinations.meta_capi import MetaCapiConfig, MetaCapiDestination
from destinations.meta_capi.client import PLACEHOLDER_TEST_CODE
from router.destination import MappingError
from router.event import Event
from router.http import HttpClient
from router.secret import Secret
from router.testing.events import make_event
from router.testing.fake_platform import Answer


def fresh(**overrides: Any) -> Event:
    """A purchase that happened a minute ago."""
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return make_event(occurred_at=moment, received_at=moment, **overrides)


async def test_a_batch_arrives_in_one_request_hashed(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """Three events go out as one POST to /{version}/{pixel}/events and Meta counts all three."""
    batch = [destination.map(fresh(event_id=f"e-{i}")) for i in range(3)]
    outcomes = await destination.send(batch)
    assert [o.kind for o in outcomes] == ["delivered"] * 3
    [request] = meta.platform.requests
    assert (request.method, request.path) == ("POST", f"/{VERSION}/{PIXEL}/events")
    assert request.query == {"access_token": TOKEN}
    assert [e["event_id"] for e in meta.received] == ["e-0", "e-1", "e-2"]
    assert "test_event_code" not in request.json()
    users = meta.received[0]["user_data"]
    assert users["client_ip_address"] == "81.2.69.142"
    assert "jane.doe@example.com" not in request.body.decode()


async def test_an_old_event_is_rejected_without_being_sent(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """An event older than max_age_days is 'too_old' and never reaches Meta; the rest go."""
    destination.now = lambda: datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp()
    meta.now = destination.now
    old = make_event(event_id="old")  # 2026-11-20 14:30: 7.9 days before `now`
    young = make_event(event_id="young", occurred_at=datetime(2026, 11, 27, tzinfo=UTC))
    outcomes = await destination.send([destination.map(old), destination.map(young)])
    assert [(o.kind, o.reason) for o in outcomes] == [("rejected", "too_old"), ("delivered", "ok")]
    assert [e["event_id"] for e in meta.received] == ["young"]


async def test_only_old_events_send_nothing(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """A batch of only old events makes no request at all."""
    destination.now = lambda: datetime(2026, 12, 30, tzinfo=UTC).timestamp()
    outcomes = await destination.send([destination.map(make_event()) for _ in range(2)])
    assert {o.reason for o in outcomes} == {"too_old"}
    assert meta.platform.requests == []


async def test_one_bad_event_rejects_the_whole_batch(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """Meta refuses the request for one unknown currency: every outcome is a whole-batch reject."""
    batch = [destination.map(fresh()), destination.map(fresh(currency="XYZ"))]
    outcomes = await destination.send(batch)
    assert {(o.kind, o.reason, o.whole_batch, o.status) for o in outcomes} == {
        ("rejected", "meta_100", True, 400)
    }
    assert "currency 'xyz'" in outcomes[0].detail
    assert meta.received == []


async def test_a_short_count_asks_for_a_split(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """A 200 counting fewer events than sent is not delivery: the batch is split and re-sent."""
    meta.platform.script(Answer(200, {"events_received": 1, "messages": []}))
    outcomes = await destination.send([destination.map(fresh()) for _ in range(2)])
    assert {(o.kind, o.reason, o.whole_batch) for o in outcomes} == {
        ("rejected", "events_missing", True)
    }


async def test_a_wrong_token_pauses_and_keeps_the_events(meta: FakeMeta, http: HttpClient) -> None:
    """Code 190 retries and pauses the destination; the detail never holds the token."""
    config = MetaCapiConfig(
        pixel_id=PIXEL,
        access_token=Secret("EAAB-wrong"),
        endpoint=meta.platform.url,
        api_version=VERSION,
    )
    destination = MetaCapiDestination(config, http)
    [outcome] = await destination.send([destination.map(fresh())])
    assert (outcome.kind, outcome.reason, outcome.pause) == ("retry", "meta_190", True)
    assert "EAAB-wrong" not in outcome.detail
    assert not (await destination.health()).ok


async def test_temporarily_blocked_waits_an_hour(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """Code 368 is retried after a long, explicit wait."""
    meta.platform.script(Answer(400, graph_error(368, "Temporarily blocked")))
    [outcome] = await destination.send([destination.map(fresh())])
    assert (outcome.kind, outcome.retry_after, outcome.pause) == ("retry", 3600.0, True)


async def test_unreachable_meta_is_a_retry(http: HttpClient) -> None:
    """A refused connection is retried with the transport reason."""
    config = MetaCapiConfig(
        pixel_id=PIXEL, access_token=Secret(TOKEN), endpoint="http://127.0.0.1:9"
    )
    destination = MetaCapiDestination(config, http)
    [outcome] = await destination.send([destination.map(fresh())])
    assert (outcome.kind, outcome.reason) == ("retry", "connect_failed")


async def test_configured_test_event_code_goes_in_the_body(
    meta: FakeMeta, http: HttpClient
) -> None:
    """With test_event_code set, every request carries it (routing events to Test Events)."""
    config = MetaCapiConfig(
        pixel_id=PIXEL,
        access_token=Secret(TOKEN),
        endpoint=meta.platform.url,
        api_version=VERSION,
        test_event_code="TEST123",
    )
    destination = MetaCapiDestination(config, http)
    await destination.send([destination.map(fresh())])
    answer = await destination.send_test([destination.map(fresh())])
    assert answer.ok
    assert meta.test_codes == ["TEST123", "TEST123"]


async def test_send_test_without_a_code_uses_the_placeholder(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """send_test always uses test mode, with a placeholder code (and says so) if none is set."""
    answer = await destination.send_test([destination.map(fresh())])
    assert (answer.ok, answer.status) == (True, 200)
    assert orjson.loads(answer.answer)["events_received"] == 1
    assert meta.test_codes == [PLACEHOLDER_TEST_CODE]
    assert any(PLACEHOLDER_TEST_CODE in note for note in answer.messages)


async def test_send_test_reports_meta_refusal(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """A refused test batch is not ok and shows Meta's error verbatim."""
    answer = await destination.send_test([destination.map(fresh(currency="XYZ"))])
    assert (answer.ok, answer.status) == (False, 400)
    assert orjson.loads(answer.answer)["error"]["code"] == 100


async def test_health_reads_the_pixel_without_event_data(
    meta: FakeMeta, destination: MetaCapiDestination
) -> None:
    """The health check is a GET of the pixel's id: the token works, no event is sent."""
    health = await destination.health()
    assert health.ok, health.detail
    [request] = meta.platform.requests
    assert (request.method, request.path, request.query["fields"]) == (
        "GET",
        f"/{VERSION}/{PIXEL}",
        "id",
    )
    assert request.body == b""


def test_private_ip_is_never_sent(destination: MetaCapiDestination) -> None:
    """Only a public client IP becomes client_ip_address."""
    for kind in ("private", "loopback", "cdn", "own_server", "missing"):
        payload = destination.map(fresh(client_ip="10.0.0.1", client_ip_class=kind))
        assert "client_ip_address" not in payload["user_data"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"name": "refund"}, "unsupported_event"),
        ({"name": "identify"}, "unsupported_event"),
        ({"value": None}, "missing_value"),
        ({"currency": None}, "missing_value"),
        ({"name": "custom", "source_name": "Gift <Card>"}, "invalid_event_name"),
        ({"name": "custom", "source_name": "x" * 51}, "invalid_event_name"),
        ({"user_agent": None}, "missing_user_agent"),
        ({"page_url": None}, "missing_page_url"),
    ],
)
def test_events_meta_would_refuse_are_mapping_errors(
    destination: MetaCapiDestination, overrides: dict[str, Any], reason: str
) -> None:
    """What Meta would refuse is refused at mapping time, before it can spoil a batch."""
    with pytest.raises(MappingError) as caught:
        destination.map(fresh(**overrides))
    assert caught.value.reason == reason


def test_an_event_without_user_data_is_a_mapping_error(destination: MetaCapiDestination) -> None:
    """With identity dropped (e.g. consent denied), Meta has nothing to match: not sent."""
    from router.privacy import without_user_data

    with pytest.raises(MappingError) as caught:
        destination.map(without_user_data(fresh()))
    assert caught.value.reason == "no_user_data"


def test_non_web_events_map_their_action_source(destination: MetaCapiDestination) -> None:
    """An offline sale is a physical_store event and needs no URL or user agent."""
    event = fresh(action_source="offline", page_url=None, user_agent=None, value=Decimal("10"))
    payload = destination.map(event)
    assert payload["action_source"] == "physical_store"
    assert "event_source_url" not in payload
    assert payload["custom_data"]["value"] == 10
