"""Click upload mode against a fake Google Ads API that answers with partial failures."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Factory
from fake_google_ads import DEV_TOKEN, MANAGER, VERSION, FakeGoogleAds

from router.secret import Secret
from router.testing.events import make_event

LATER = 6 * 3600.0


def batch(destination: Any, *events: dict[str, Any]) -> list[Any]:
    return [destination.map(make_event(**overrides)) for overrides in events]


async def test_the_request_google_documents(ads: FakeGoogleAds, click_upload: Factory) -> None:
    """POST /v{N}/customers/{id}:uploadClickConversions, developer token, partialFailure."""
    destination = click_upload(login_customer_id=MANAGER)
    outcomes = await destination.send(batch(destination, {"gclid": "G1"}, {"order_id": "WC-2"}))
    assert [o.kind for o in outcomes] == ["delivered", "delivered"]
    [request] = ads.requests
    assert request.path == f"/{VERSION}/customers/1234567890:uploadClickConversions"
    assert request.headers["developer-token"] == DEV_TOKEN
    assert request.headers["login-customer-id"] == MANAGER
    assert request.headers["Authorization"] == "Bearer token-1"
    body = request.json()
    assert body["partialFailure"] is True and "validateOnly" not in body
    assert [c["orderId"] for c in body["conversions"]] == ["WC-1001", "WC-2"]
    assert body["conversions"][0]["gclid"] == "G1"


async def test_each_row_is_settled_by_its_own_error(
    ads: FakeGoogleAds, click_upload: Factory
) -> None:
    """Per-row outcomes from partialFailureError, classified by the table."""
    ads.row_errors = {
        "recent": ("conversionUploadError", "TOO_RECENT_EVENT", "click under 6 hours old"),
        "nomatch": ("conversionUploadError", "CLICK_NOT_FOUND", "no click"),
        "garbled": ("conversionUploadError", "UNPARSEABLE_GCLID", "cannot decode"),
        "foreign": ("conversionUploadError", "INVALID_CUSTOMER_FOR_CLICK", "other account"),
    }
    destination = click_upload()
    clicks = ["fine", "recent", "nomatch", "garbled", "foreign"]
    payloads = batch(destination, *({"gclid": c, "order_id": c} for c in clicks))
    outcomes = await destination.send(payloads)
    assert [(o.kind, o.reason, o.pause, o.retry_after) for o in outcomes] == [
        ("delivered", "ok", False, None),
        ("retry", "too_recent_event", False, LATER),
        ("delivered", "click_not_found", False, None),
        ("rejected", "unparseable_gclid", False, None),
        ("retry", "invalid_customer_for_click", True, None),
    ]
    assert "UNPARSEABLE_GCLID at conversions[3]: cannot decode" in outcomes[3].detail
    assert [c["gclid"] for c in ads.received] == ["fine"]


async def test_a_resent_conversion_counts_as_delivered(
    ads: FakeGoogleAds, click_upload: Factory
) -> None:
    """At-least-once delivery: Google's ORDER_ID_ALREADY_IN_USE means it is there already."""
    destination = click_upload()
    payloads = batch(destination, {"gclid": "G"})
    await destination.send(payloads)
    [again] = await destination.send(payloads)
    assert (again.kind, again.reason) == ("delivered", "order_id_already_in_use")
    assert len(ads.received) == 1


async def test_two_events_of_one_order_in_a_request_are_retried_apart(
    ads: FakeGoogleAds, click_upload: Factory
) -> None:
    """DUPLICATE_ORDER_ID fails both copies; sent again apart, one lands, one is a duplicate."""
    destination = click_upload()
    payloads = batch(destination, {"gclid": "A", "order_id": "O"}, {"gclid": "B", "order_id": "O"})
    assert {o.reason for o in await destination.send(payloads)} == {"duplicate_order_id"}
    first, second = [(await destination.send([p]))[0] for p in payloads]
    assert (first.reason, second.reason) == ("ok", "order_id_already_in_use")


async def test_at_most_2000_conversions_per_request(
    ads: FakeGoogleAds, click_upload: Factory
) -> None:
    """2,001 conversions go as 2,000 and 1 (the fake refuses more)."""
    destination = click_upload()
    payloads = [destination.map(make_event(order_id=f"O{i}")) for i in range(2001)]
    outcomes = await destination.send(payloads)
    assert {o.kind for o in outcomes} == {"delivered"}
    assert sorted(len(r.json()["conversions"]) for r in ads.requests) == [1, 2000]


async def test_a_refused_developer_token_pauses(ads: FakeGoogleAds, click_upload: Factory) -> None:
    """A wrong developer token: after one fresh OAuth token, the destination pauses."""
    destination = click_upload(developer_token=Secret("wrong"))
    [outcome] = await destination.send(batch(destination, {}))
    assert (outcome.kind, outcome.reason, outcome.pause) == ("retry", "auth_refused", True)
    assert "DEVELOPER_TOKEN_INVALID" in outcome.detail


async def test_a_wrong_manager_account_pauses(click_upload: Factory) -> None:
    """USER_PERMISSION_DENIED (often a missing or wrong login-customer-id) pauses."""
    destination = click_upload(login_customer_id="9999999999")
    [outcome] = await destination.send(batch(destination, {}))
    assert (outcome.kind, outcome.reason, outcome.pause) == (
        "retry",
        "user_permission_denied",
        True,
    )


async def test_an_unknown_conversion_action_pauses(click_upload: Factory) -> None:
    """NO_CONVERSION_ACTION_FOUND is configuration: the events wait, nothing dead-letters."""
    destination = click_upload(conversion_actions={"purchase": "5"})
    [outcome] = await destination.send(batch(destination, {}))
    assert (outcome.kind, outcome.reason, outcome.pause) == (
        "retry",
        "no_conversion_action_found",
        True,
    )


async def test_send_test_validates_only(ads: FakeGoogleAds, click_upload: Factory) -> None:
    """send-test posts validateOnly: true; Google records nothing; row errors come back."""
    destination = click_upload()
    answer = await destination.send_test(batch(destination, {}))
    assert answer.ok and ads.requests[0].json()["validateOnly"] is True
    assert ads.received == [] and len(ads.validated) == 1
    ads.row_errors = {"bad": ("conversionUploadError", "UNPARSEABLE_GCLID", "cannot decode")}
    answer = await destination.send_test(batch(destination, {"gclid": "bad"}))
    assert not answer.ok and any("UNPARSEABLE_GCLID" in m for m in answer.messages)


async def test_health_lists_accessible_customers(click_upload: Factory) -> None:
    """Health proves OAuth user and developer token with listAccessibleCustomers, no events."""
    assert (await click_upload().health()).ok
    health = await click_upload(developer_token=Secret("wrong")).health()
    assert not health.ok and "auth_refused" in health.detail


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"conversionDateTime": "2026-11-20T14:30:05Z"},
            "invalid_string_date_time_seconds_with_offset",
        ),
        ({"gclid": "G", "wbraid": "W"}, "value_must_be_unset"),
        ({"gbraid": "B", "wbraid": "W"}, "gbraid_wbraid_both_set"),
        ({"userIdentifiers": [{"hashedEmail": "a" * 64}] * 6}, "too_many"),
        ({"userIdentifiers": [{"hashedEmail": "Not-A-Hash"}]}, "invalid_user_identifier"),
        (
            {"consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}},
            "value_must_be_unset",
        ),
        ({"consent": {"adUserData": "DENIED"}}, "user_data_without_consent"),
    ],
)
async def test_the_fake_holds_payloads_to_googles_rules(
    ads: FakeGoogleAds, click_upload: Factory, change: dict[str, Any], code: str
) -> None:
    """A conversion breaking a documented rule fails its row, and only its row."""
    destination = click_upload()
    good, bad = batch(destination, {"order_id": "ok"}, {"order_id": "bad"})
    [fine, refused] = await destination.send([good, {**bad, **change}])
    assert fine.kind == "delivered"
    assert (refused.kind, refused.reason) == ("rejected", code)
    assert [c["orderId"] for c in ads.received] == ["ok"]
