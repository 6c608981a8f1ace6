"""The event debugger's API finds a purchase by order id, user id or email and shows its
Spotify payload as sent, its 200 attempt and why the webhook did not get it; nothing raw."""

from __future__ import annotations

from typing import Any

from ops_kit import CUSTOMER_IP, EMAIL, PHONE, admin_get, eventually, message

from router.privacy import hash_email
from router.testing.fake_platform import Answer, FakePlatform
from router.testing.server import RunningTagless

RAW = (EMAIL, EMAIL.lower(), PHONE, CUSTOMER_IP, "Jane", "Roe")


def spotify_events(platform: FakePlatform) -> list[dict[str, Any]]:
    return [
        event
        for seen in platform.requests
        if seen.status == 200 and seen.path.startswith("/capi-direct")
        for event in seen.json()["conversion_events"]["events"]
    ]


async def find(running: RunningTagless, q: str, **params: str) -> tuple[dict[str, Any], str]:
    status, answer, text = await admin_get(running, "/api/events", q=q, **params)
    assert status == 200, answer
    return answer, text


async def settled_attempts(running: RunningTagless, q: str) -> tuple[dict[str, Any], str]:
    """The answer once the event's Spotify attempts are in the log."""

    async def look() -> tuple[dict[str, Any], str] | None:
        answer, text = await find(running, q)
        spotify = [d for e in answer["events"] for d in e["destinations"] if d["id"] == "spotify"]
        return (answer, text) if spotify and spotify[0]["attempts"] else None

    found: tuple[dict[str, Any], str] = await eventually(look)
    return found


async def test_a_purchase_is_found_by_order_id_with_its_payload_and_200_attempt(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """By order id: the purchase, Spotify's decision ``sent``, the payload as Spotify got it
    (hashes shortened, the IP's host part hidden) and one attempt answered 200; the webhook
    that only takes leads shows ``filtered`` by its allow list."""
    status, _ = await running.post("/v1/track", message("m-1"), key="shop-key")
    assert status == 200
    await eventually(lambda: spotify_events(platform))
    answer, text = await settled_attempts(running, "WC-7781")
    assert answer["query_kind"] == "order_id"
    [event] = answer["events"]
    assert (event["event_id"], event["event_name"], event["store"]) == ("m-1", "purchase", "shop")
    assert event["event"]["order_id"] == "WC-7781"
    spotify, leads = event["destinations"]
    assert (spotify["id"], spotify["decision"]) == ("spotify", "sent")
    [attempt] = spotify["attempts"]
    assert (attempt["status"], attempt["outcome"]) == (200, "delivered")
    assert attempt["latency_ms"] is not None and attempt["at"] > 0
    [sent] = spotify_events(platform)
    shown = spotify["payload"]
    assert shown["event_id"] == sent["event_id"] == "m-1"
    assert shown["event_name"] == sent["event_name"] == "PURCHASE"
    assert shown["user_data"]["ip_address"] == "81.2.x.x"
    [hashed] = sent["user_data"]["hashed_emails"]
    assert shown["user_data"]["hashed_emails"] == [hashed[:6] + "…"]
    assert (leads["decision"], leads["payload"]) == ("filtered", None)
    assert "events.allow" in leads["detail"]
    for raw in RAW:
        assert raw not in text


async def test_an_email_is_hashed_before_the_look_up(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """The same email in another case finds the event; so does its SHA-256; the answer
    shows the email only as a shortened hash."""
    await running.post("/v1/track", message("m-2"), key="shop-key")
    await eventually(lambda: spotify_events(platform))
    answer, text = await find(running, "  jane.roe@EXAMPLE.com ")
    assert answer["query_kind"] == "email"
    assert [e["event_id"] for e in answer["events"]] == ["m-2"]
    digest = hash_email(EMAIL, "meta")
    assert digest is not None
    assert answer["events"][0]["event"]["emails"] == ["sha256:" + digest[:6] + "…"]
    by_hash, _ = await find(running, digest)
    assert [e["event_id"] for e in by_hash["events"]] == ["m-2"]
    for raw in RAW:
        assert raw not in text


async def test_event_and_user_ids_are_looked_up_and_nothing_found_says_so(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """An event id and a user id each find the event by their own kind; an unknown query
    answers no events."""
    await running.post("/v1/track", message("m-3", user_id="customer-99"), key="shop-key")
    by_id, _ = await find(running, "m-3")
    assert (by_id["query_kind"], len(by_id["events"])) == ("event_id", 1)
    by_user, _ = await find(running, "customer-99")
    assert (by_user["query_kind"], len(by_user["events"])) == ("user_id", 1)
    nothing, _ = await find(running, "no-such-thing")
    assert nothing == {"query_kind": "none", "events": []}


async def test_a_refused_event_shows_dead_with_the_scrubbed_answer(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """Spotify answers 400 echoing the email: the debugger shows ``dead``, the 400 attempt
    and the answer without the email."""
    platform.default = Answer(400, {"message": f"invalid user {EMAIL.lower()}"})
    await running.post("/v1/track", message("m-4"), key="shop-key")

    async def dead() -> dict[str, Any] | None:
        answer, _ = await find(running, "m-4")
        spotify = answer["events"][0]["destinations"][0]
        return spotify if spotify["decision"] == "dead" and spotify["attempts"] else None

    spotify = await eventually(dead)
    [attempt] = spotify["attempts"]
    assert (attempt["status"], attempt["outcome"]) == (400, "dead")
    assert "invalid user" in attempt["answer"] and EMAIL.lower() not in attempt["answer"]
    assert "400" in spotify["detail"]


async def test_the_api_needs_the_admin_token_and_a_query(running: RunningTagless) -> None:
    """No token or a write key: 401. An empty query or a bad limit: 400 saying what is valid."""
    status, _, _ = await admin_get(running, "/api/events", token=None, q="m-1")
    assert status == 401
    status, _, _ = await admin_get(running, "/api/events", token="shop-key", q="m-1")
    assert status == 401
    status, answer, _ = await admin_get(running, "/api/events", q=" ")
    assert status == 400 and "event id" in answer["error"]
    status, answer, _ = await admin_get(running, "/api/events", q="m-1", limit="x")
    assert status == 400 and "limit" in answer["error"]
    status, answer, _ = await admin_get(running, "/api/events", q="m-1", store="nope")
    assert status == 400 and "shop" in answer["error"]


async def test_a_retrying_event_shows_its_failed_attempt_and_next_retry(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """Spotify answers 503: the debugger shows ``retrying``, the 503 attempt and when the next
    try is due, after the try."""
    platform.default = Answer(503, {"message": "unavailable"})
    await running.post("/v1/track", message("m-5"), key="shop-key")

    async def retrying() -> dict[str, Any] | None:
        answer, _ = await find(running, "m-5")
        spotify = answer["events"][0]["destinations"][0]
        return spotify if spotify["decision"] == "retrying" and spotify["attempts"] else None

    spotify = await eventually(retrying)
    attempt = spotify["attempts"][0]
    assert (attempt["status"], attempt["outcome"]) == (503, "retry")
    assert attempt["next_retry_at"] >= attempt["at"]
    assert "http_503" in spotify["detail"]


async def test_consent_decisions_show_stripped_and_skipped(
    running: RunningTagless, platform: FakePlatform
) -> None:
    """A lead whose customer denied ad data: the webhook got it without user data
    (``stripped_consent``, a payload without the email), Spotify had nothing left to match on
    (``skipped_consent`` with the mapping's reason)."""
    lead = message("m-6", event="Lead Generated")
    lead["context"]["consent"] = {"categoryPreferences": {"C0001": True, "C0004": False}}
    await running.post("/v1/track", lead, key="shop-key")

    async def settled() -> dict[str, Any] | None:
        answer, _ = await find(running, "m-6")
        by_id = {d["id"]: d for d in answer["events"][0]["destinations"]}
        done = by_id["leads"]["decision"] == "stripped_consent"
        return by_id if done and by_id["spotify"]["decision"] == "skipped_consent" else None

    by_id = await eventually(settled)
    assert by_id["leads"]["payload"]["emails"] == []
    assert by_id["leads"]["attempts"][0]["status"] == 200
    assert by_id["spotify"]["detail"] == "consent left nothing to match on (no_user_identifier)"
    assert by_id["spotify"]["payload"] is None
