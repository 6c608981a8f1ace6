"""Data Manager mode against a fake that enforces the documented rules and answers like Google."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Factory
from fake_data_manager import MANAGER, FakeDataManager, rpc_error

from router.event import Consent
from router.testing.events import make_event
from router.testing.fake_platform import Answer

LEAD = {"name": "generate_lead", "order_id": None}


def batch(destination: Any, *events: dict[str, Any]) -> list[Any]:
    return [destination.map(make_event(**overrides)) for overrides in events]


async def test_one_request_per_conversion_action(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """Purchases and leads go in one request each, with the documented request shape."""
    destination = data_manager()
    payloads = batch(destination, {}, LEAD, {"order_id": "WC-2"})
    outcomes = await destination.send(payloads)
    assert [o.kind for o in outcomes] == ["delivered"] * 3
    bodies = {r.json()["destinations"][0]["productDestinationId"]: r.json() for r in dm.requests}
    assert sorted(bodies) == ["987654321", "987654322"]
    purchase = bodies["987654321"]
    assert purchase["destinations"] == [
        {
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
            "productDestinationId": "987654321",
        }
    ]
    assert purchase["encoding"] == "HEX" and "validateOnly" not in purchase
    assert [e["transactionId"] for e in purchase["events"]] == ["WC-1001", "WC-2"]
    assert {r.headers["Authorization"] for r in dm.requests} == {"Bearer token-1"}
    assert len(dm.received) == 3


async def test_login_customer_id_becomes_the_login_account(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """login_customer_id is sent as loginAccount (the fake refuses any other manager)."""
    destination = data_manager(login_customer_id=MANAGER)
    assert [o.kind for o in await destination.send(batch(destination, {}))] == ["delivered"]
    login = dm.requests[0].json()["destinations"][0]["loginAccount"]
    assert login == {"accountType": "GOOGLE_ADS", "accountId": MANAGER}


async def test_a_wrong_account_pauses_instead_of_dead_lettering(data_manager: Factory) -> None:
    """PERMISSION_DENIED is the account's problem: events wait and the destination pauses."""
    destination = data_manager(login_customer_id="9999999999")
    [outcome] = await destination.send(batch(destination, {}))
    assert (outcome.kind, outcome.reason, outcome.pause) == ("retry", "permission_denied", True)


async def test_an_unknown_conversion_action_pauses_only_its_events(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """INVALID_CONVERSION_ACTION_ID pauses that action's events; the other action delivers."""
    destination = data_manager(conversion_actions={"purchase": "987654321", "generate_lead": "5"})
    outcomes = await destination.send(batch(destination, {}, LEAD))
    assert [(o.kind, o.reason, o.pause) for o in outcomes] == [
        ("delivered", "ok", False),
        ("retry", "invalid_conversion_action_id", True),
    ]
    assert [e["_action"] for e in dm.received] == ["987654321"]


async def test_at_most_2000_events_per_request(dm: FakeDataManager, data_manager: Factory) -> None:
    """2,001 events of one action go as 2,000 and 1 (the fake refuses more)."""
    destination = data_manager()
    payload = destination.map(make_event())
    outcomes = await destination.send([payload] * 2001)
    assert {o.kind for o in outcomes} == {"delivered"}
    assert sorted(len(r.json()["events"]) for r in dm.requests) == [1, 2000]


def tamper(payload: dict[str, Any], **event: Any) -> dict[str, Any]:
    return {**payload, "event": {**payload["event"], **event}}


async def test_a_bad_event_is_rejected_alone_and_the_rest_resent(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """Fast-fail: the event the BadRequest names is rejected, the others delivered on resend."""
    destination = data_manager()
    payloads = batch(destination, {"order_id": "A"}, {"order_id": "B"}, {"order_id": "C"})
    payloads[1] = tamper(payloads[1], eventTimestamp="2026-11-20 14:30:05")
    outcomes = await destination.send(payloads)
    assert [o.kind for o in outcomes] == ["delivered", "rejected", "delivered"]
    assert outcomes[1].reason == "invalid_format"
    assert "events[1].event_timestamp" in outcomes[1].detail
    assert sorted(e["transactionId"] for e in dm.received) == ["A", "C"]
    assert len(dm.requests) == 2


async def test_each_named_bad_event_gets_its_own_reason(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """Two bad events in one request: each is rejected with the code its violation gives."""
    destination = data_manager()
    payloads = batch(destination, *({"order_id": f"O{i}"} for i in range(3)))
    payloads[0] = tamper(payloads[0], currency="euro")
    payloads[2] = tamper(payloads[2], eventTimestamp="noon")
    outcomes = await destination.send(payloads)
    assert [(o.kind, o.reason) for o in outcomes] == [
        ("rejected", "invalid_currency_code"),
        ("delivered", "ok"),
        ("rejected", "invalid_format"),
    ]


async def test_a_bad_event_no_error_names_is_found_by_halving(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """Without field violations the request is halved until the bad event stands alone."""
    dm.name_events = False
    destination = data_manager()
    payloads = batch(destination, *({"order_id": f"O{i}"} for i in range(5)))
    payloads[3] = tamper(payloads[3], currency="euro")
    outcomes = await destination.send(payloads)
    assert [o.kind for o in outcomes] == ["delivered"] * 3 + ["rejected", "delivered"]
    assert outcomes[3].reason == "invalid_currency_code"
    assert sorted(e["transactionId"] for e in dm.received) == ["O0", "O1", "O2", "O4"]


async def test_server_errors_retry_and_rate_limits_pause(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """503 retries; 429 RESOURCE_EXHAUSTED pauses the destination for its Retry-After."""
    destination = data_manager()
    payloads = batch(destination, {})
    dm.platform.script(
        Answer(503, rpc_error(503, "UNAVAILABLE", "try later", None)),
        Answer(
            429,
            rpc_error(429, "RESOURCE_EXHAUSTED", "quota", "RESOURCE_EXHAUSTED"),
            {"Retry-After": "30"},
        ),
    )
    [first] = await destination.send(payloads)
    [second] = await destination.send(payloads)
    assert (first.kind, first.reason, first.pause) == ("retry", "http_503", False)
    assert (second.kind, second.reason, second.pause, second.retry_after) == (
        "retry",
        "resource_exhausted",
        True,
        30.0,
    )


async def test_consent_denied_events_reach_google_without_user_data(
    dm: FakeDataManager, data_manager: Factory
) -> None:
    """The fake refuses user data under denied consent; Tagless sends only the click id."""
    destination = data_manager()
    denied = {"gclid": "Cj0-click", "consent": Consent(ad_user_data="denied")}
    assert [o.kind for o in await destination.send(batch(destination, denied))] == ["delivered"]
    [event] = dm.received
    assert "userData" not in event and event["consent"] == {"adUserData": "CONSENT_DENIED"}


async def test_send_test_validates_only(dm: FakeDataManager, data_manager: Factory) -> None:
    """send-test posts validateOnly: true; Google records nothing; errors come back as messages."""
    destination = data_manager()
    good = batch(destination, {})
    answer = await destination.send_test(good)
    assert answer.ok and answer.status == 200
    assert dm.requests[0].json()["validateOnly"] is True
    assert dm.received == [] and len(dm.validated) == 1
    bad = [tamper(good[0], eventTimestamp="yesterday")]
    answer = await destination.send_test(bad)
    assert not answer.ok and answer.status == 400
    assert any("event_timestamp" in m for m in answer.messages)


async def test_no_answer_is_retried(data_manager: Factory) -> None:
    """A platform that cannot be reached: every event retries with the transport's reason."""
    destination = data_manager(endpoint="http://127.0.0.1:9")
    [outcome] = await destination.send(batch(destination, {}))
    assert (outcome.kind, outcome.reason) == ("retry", "connect_failed")


async def test_health_checks_the_credentials(data_manager: Factory) -> None:
    """Health gets a token for the Data Manager scope and sends no event data."""
    health = await data_manager().health()
    assert health.ok and "access token issued" in health.detail


EMAIL = {"emailAddress": "a" * 64}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"eventTimestamp": "2026-11-20 14:30:05+00:00"}, "invalid_format"),
        ({"adIdentifiers": {"gclid": "G", "wbraid": "W"}}, "invalid_argument"),
        ({"userData": {"userIdentifiers": [EMAIL] * 11}}, "too_many_user_identifiers"),
        ({"userData": {"userIdentifiers": [{"emailAddress": "A" * 64}]}}, "invalid_sha256_format"),
        (
            {"userData": {"userIdentifiers": [{**EMAIL, "phoneNumber": "b" * 64}]}},
            "invalid_argument",
        ),
        ({"consent": {"adUserData": "GRANTED"}}, "invalid_enum_value"),
        ({"consent": {"adUserData": "CONSENT_DENIED"}}, "invalid_event"),
        ({"userData": {"userIdentifiers": []}}, "too_many_user_identifiers"),
    ],
)
async def test_the_fake_holds_events_to_googles_rules(
    dm: FakeDataManager, data_manager: Factory, change: dict[str, Any], reason: str
) -> None:
    """An event breaking a documented rule is rejected alone; its neighbour is delivered."""
    destination = data_manager()
    good, bad = batch(destination, {"order_id": "ok"}, {"order_id": "bad"})
    [fine, refused] = await destination.send([good, tamper(bad, **change)])
    assert fine.kind == "delivered"
    assert (refused.kind, refused.reason) == ("rejected", reason)
    assert [e["transactionId"] for e in dm.received] == ["ok"]
