"""GET /api/dead-letters filters dead letters; POST /api/replay counts, then sends them again."""

from __future__ import annotations

from typing import Any

import orjson
from admin_kit import TOKEN, Admin, wait_for

BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def listed(admin: Admin, query: str) -> tuple[int, Any]:
    status, _, text = await admin.request("GET", "/api/dead-letters" + query, headers=BEARER)
    return status, orjson.loads(text)


async def replay(admin: Admin, body: Any) -> tuple[int, Any]:
    status, _, text = await admin.request(
        "POST", "/api/replay", data=orjson.dumps(body), headers=BEARER
    )
    return status, orjson.loads(text)


def delivered_ids(admin: Admin) -> list[str]:
    """Event ids the webhook accepted (answered 200)."""
    return [
        event["event_id"]
        for request in admin.hook.requests
        if request.status == 200
        for event in request.json()["events"]
    ]


async def test_dead_letters_are_listed_with_reasons_and_filtered(admin: Admin) -> None:
    """Each dead letter shows its destination, event id, reason and status; store, destination,
    reason and the time of death narrow the list."""
    await admin.dead(2)
    status, answer = await listed(admin, "?store=shop")
    assert status == 200
    assert answer["count"] == 2
    rows = answer["dead_letters"]
    assert {row["event_id"] for row in rows} == {"order-0", "order-1"}
    assert {(row["destination"], row["last_status"]) for row in rows} == {("hook", 400)}
    reason = rows[0]["reason"]
    assert reason
    assert (await listed(admin, f"?reason={reason[:4]}"))[1]["count"] == 2
    assert (await listed(admin, "?reason=no_such_reason"))[1]["count"] == 0
    assert (await listed(admin, "?destination=other"))[1]["count"] == 0
    assert (await listed(admin, "?since=2100-01-01T00:00:00Z"))[1]["count"] == 0
    assert (await listed(admin, "?until=2100-01-01"))[1]["count"] == 2
    assert (await listed(admin, "?limit=1"))[1]["count"] == 1


async def test_bad_filters_are_refused_with_what_would_be_valid(admin: Admin) -> None:
    """An unknown store, a time that is no time, or a bad limit: 400 naming the valid values."""
    status, answer = await listed(admin, "?store=nowhere")
    assert status == 400
    assert "stores: shop" in answer["error"]
    status, answer = await listed(admin, "?since=yesterday")
    assert status == 400
    assert "ISO 8601" in answer["error"]
    status, answer = await listed(admin, "?limit=0")
    assert status == 400


async def test_a_dry_run_counts_and_sends_nothing(admin: Admin) -> None:
    """A dry run (the default) says how many would be sent and leaves every dead letter."""
    await admin.dead(2)
    requests = len(admin.hook.requests)
    status, answer = await replay(admin, {"store": "shop"})
    assert status == 200
    assert answer["dry_run"] is True
    assert answer["matched"] == 2
    assert answer["replayed"] == 0
    assert len((await listed(admin, ""))[1]["dead_letters"]) == 2
    assert len(admin.hook.requests) == requests


async def test_replaying_one_event_delivers_it_and_leaves_the_others(admin: Admin) -> None:
    """Replaying one event id makes it due again: the platform, now accepting, receives it,
    and it leaves the dead letters; the other stays."""
    await admin.dead(2)
    admin.refuse = False
    status, answer = await replay(
        admin, {"store": "shop", "event_ids": ["order-1"], "dry_run": False}
    )
    assert status == 200
    assert answer["replayed"] == 1

    async def delivered() -> bool:
        return "order-1" in delivered_ids(admin)

    await wait_for(delivered, "the replayed event at the webhook")
    rows = (await listed(admin, ""))[1]["dead_letters"]
    assert [row["event_id"] for row in rows] == ["order-0"]
    assert "order-0" not in delivered_ids(admin)


async def test_a_bad_replay_request_says_what_is_wrong(admin: Admin) -> None:
    """No store, an unknown store or field, a non-boolean dry_run, or ids that are not a
    list: 400 naming the field."""
    cases = [
        ({"dry_run": True}, "store"),
        ({"store": "nowhere"}, "nowhere"),
        ({"store": "shop", "evnt_ids": []}, "evnt_ids"),
        ({"store": "shop", "dry_run": "no"}, "dry_run"),
        ({"store": "shop", "event_ids": "order-1"}, "event_ids"),
        ([], "JSON object"),
    ]
    for body, message in cases:
        status, answer = await replay(admin, body)
        assert status == 400, body
        assert message in answer["error"], answer
    status, _, text = await admin.request("POST", "/api/replay", data=b"{", headers=BEARER)
    assert status == 400
    assert "not JSON" in text
