"""The Segment HTTP API: accepted events reach the destination once; bad requests store nothing."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import sqlite3
from typing import Any

import orjson

from router.ingest.http import Ingest
from router.outbox.base import OutboxFull
from router.testing.server import basic_auth

_ids = itertools.count()


def track(**extra: Any) -> dict[str, Any]:
    message = {
        "type": "track",
        "event": "Order Completed",
        "messageId": f"msg-{next(_ids)}",
        "userId": "customer-1",
        "properties": {"order_id": "WC-1", "revenue": 12.5, "currency": "EUR"},
        "context": {"ip": "81.2.69.142", "traits": {"email": "jane@example.com"}},
    }
    message.update(extra)
    return message


async def wait_delivered(running: Any, count: int, seconds: float = 15.0) -> list[str]:
    for _ in range(int(seconds / 0.02)):
        ids = [event["event_id"] for event in running.sink.delivered_events()]
        if len(ids) >= count:
            await asyncio.sleep(0.2)  # anything extra would show up now
            return [event["event_id"] for event in running.sink.delivered_events()]
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(running.sink.delivered_events())} of {count} delivered")


async def test_batches_and_single_calls_reach_the_webhook_exactly_once(tagless: Any) -> None:
    """2,000 events over /v1/batch plus /v1/track and /v1/page each arrive once."""
    sent: list[str] = []
    for _ in range(4):
        batch = [track() for _ in range(500)]
        sent += [m["messageId"] for m in batch]
        assert await tagless.post("/v1/batch", {"batch": batch}) == (200, {"success": True})
    single = track()
    page = {"messageId": "page-1", "anonymousId": "anon-1", "name": "Home"}
    page["context"] = {"page": {"url": "https://shop.example/"}}
    assert (await tagless.post("/v1/track", single))[0] == 200
    assert (await tagless.post("/v1/page", page))[0] == 200
    sent += [single["messageId"], "page-1"]

    delivered = await wait_delivered(tagless, len(sent))
    assert sorted(delivered) == sorted(sent)
    by_id = {e["event_id"]: e for e in tagless.sink.delivered_events()}
    assert by_id["page-1"]["name"] == "page_view"
    assert by_id[single["messageId"]]["name"] == "purchase"
    assert by_id[single["messageId"]]["client_ip"] == "81.2.69.142"
    assert by_id[single["messageId"]]["client_ip_origin"] == "payload"


async def test_a_retried_message_id_is_accepted_and_not_delivered_twice(tagless: Any) -> None:
    """A client retry of an accepted messageId answers 200 and creates nothing new."""
    message = track()
    for _ in range(5):
        assert (await tagless.post("/v1/track", message))[0] == 200
    await tagless.post("/v1/batch", {"batch": [message, track(messageId="other")]})
    delivered = await wait_delivered(tagless, 2)
    assert sorted(delivered) == sorted([message["messageId"], "other"])
    assert tagless.stored_ids() == [message["messageId"], "other"]


async def test_gzip_bodies_are_accepted(tagless: Any) -> None:
    """A gzip-encoded batch is decompressed and accepted."""
    body = gzip.compress(orjson.dumps({"batch": [track(messageId="gz-1")]}))
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert (await tagless.post("/v1/batch", data=body, headers=headers))[0] == 200
    assert await wait_delivered(tagless, 1) == ["gz-1"]


async def test_write_key_in_the_body_selects_its_store(tagless: Any) -> None:
    """``writeKey`` in the body authenticates like the Basic-auth username."""
    status, _ = await tagless.post("/v1/track", track(writeKey="shop-key"), key=None)
    assert status == 200


async def test_authentication_failures_look_the_same(tagless: Any) -> None:
    """Missing, wrong, and query-string keys all get the same 401 body, and store nothing."""
    answers = [
        await tagless.post("/v1/track", track(), key=None),
        await tagless.post("/v1/track", track(), key="wrong-key"),
        await tagless.post("/v1/track?writeKey=shop-key", track(), key=None),
        await tagless.post("/v1/track", track(writeKey="wrong"), key=None),
    ]
    assert {status for status, _ in answers} == {401}
    assert len({orjson.dumps(body) for _, body in answers}) == 1
    assert tagless.stored_ids() == []


async def test_the_store_comes_from_the_key_not_the_payload(tagless: Any) -> None:
    """An event claiming another store is stored under the key's store."""
    await tagless.post("/v1/track", track(messageId="claim", store="shop"), key="other-key")
    with sqlite3.connect(tagless.app.config.outbox.path) as db:
        assert db.execute("SELECT store FROM events").fetchall() == [("other",)]


async def test_malformed_json_is_a_400_saying_so(tagless: Any) -> None:
    """A body that is not JSON gets 400 malformed_json."""
    status, body = await tagless.post("/v1/track", data=b"{not json")
    assert status == 400
    assert body["error"]["code"] == "malformed_json"


async def test_one_invalid_event_rejects_the_whole_batch(tagless: Any) -> None:
    """An invalid event answers 400 naming its path, and none of the batch is stored."""
    batch = [track(), track(), {"type": "track", "messageId": "x", "event": "Y"}]
    status, body = await tagless.post("/v1/batch", {"batch": batch})
    assert status == 400
    assert body["error"]["code"] == "invalid_event"
    assert body["error"]["path"].startswith("batch[2]")
    assert tagless.stored_ids() == []


async def test_batch_without_array_is_a_400(tagless: Any) -> None:
    """``/v1/batch`` needs a ``batch`` array."""
    status, body = await tagless.post("/v1/batch", {"events": []})
    assert (status, body["error"]["path"]) == (400, "batch")


async def test_oversized_event_is_a_413(tagless: Any) -> None:
    """An event over 32 KB is refused with 413 and nothing of its batch is stored."""
    big = track(properties={"blob": "x" * 33_000})
    status, body = await tagless.post("/v1/batch", {"batch": [track(), big]})
    assert status == 413
    assert body["error"]["path"] == "batch[1]"
    assert tagless.stored_ids() == []


async def test_oversized_request_is_a_413_declared_or_chunked(tagless: Any) -> None:
    """A body over the request limit is refused, whether Content-Length says so or not."""
    body = orjson.dumps({"batch": [track(properties={"p": "y" * 30_000}) for _ in range(20)]})
    assert len(body) > 512_000
    status, _ = await tagless.post("/v1/batch", data=body)
    assert status == 413

    async def chunks() -> Any:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    status, _ = await tagless.post("/v1/batch", data=chunks())
    assert status == 413
    assert tagless.stored_ids() == []


async def test_gzip_bomb_is_stopped_before_it_expands(tagless: Any) -> None:
    """A small gzip body that would inflate past the limit gets 413."""
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")
    assert len(bomb) < 100_000
    headers = {"Content-Encoding": "gzip"}
    status, body = await tagless.post("/v1/batch", data=bomb, headers=headers)
    assert status == 413
    assert "decompressed" in body["error"]["message"]


async def test_too_many_events_in_one_batch_is_a_413(tagless: Any) -> None:
    """A batch over max_batch_events is refused."""
    batch = [{"type": "page", "messageId": f"p{i}", "anonymousId": "a"} for i in range(2501)]
    status, _ = await tagless.post("/v1/batch", {"batch": batch})
    assert status == 413


async def test_origin_outside_the_allowlist_is_refused(tagless: Any) -> None:
    """A browser Origin not in allowed_origins is refused with 403; an allowed one is echoed."""
    bad = await tagless.post("/v1/track", track(), headers={"Origin": "https://evil.example"})
    assert bad[0] == 403
    async with tagless.session.post(
        tagless.base + "/v1/track",
        json=track(),
        headers={**basic_auth("shop-key"), "Origin": "https://shop.example"},
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"


async def test_a_full_outbox_answers_503_with_retry_after(tagless: Any) -> None:
    """When the outbox cannot take more, ingest answers 503 with Retry-After."""

    class Full:
        def subscribe(self, store: str) -> asyncio.Event:
            return asyncio.Event()

        async def append(self, events: Any) -> None:
            raise OutboxFull("too many events wait for a commit")

    ingest = tagless.app.ingest
    assert isinstance(ingest, Ingest)
    ingest.outbox = Full()  # type: ignore[assignment]
    async with tagless.session.post(
        tagless.base + "/v1/track", json=track(), headers=basic_auth("shop-key")
    ) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == str(round(OutboxFull.retry_after))


async def test_health_endpoints_answer(tagless: Any) -> None:
    """/healthz and /readyz answer 200 on a running server."""
    for path in ("/healthz", "/readyz"):
        async with tagless.session.get(tagless.base + path) as response:
            assert response.status == 200


def no_ip(**extra: Any) -> dict[str, Any]:
    message = track(**extra)
    message["context"] = {"userAgent": "Mozilla/5.0"}
    return message


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(tagless: Any) -> None:
    """Store `other` trusts no proxy: X-Forwarded-For is ignored and the peer decides (for a
    server key, the store's own backend)."""
    headers = {"X-Forwarded-For": "1.2.3.4"}
    await tagless.post("/v1/track", no_ip(messageId="spoof"), key="other-key", headers=headers)
    event = orjson.loads(tagless.stored_body("spoof"))
    assert (event["client_ip"], event["client_ip_origin"]) == ("127.0.0.1", "peer")
    assert event["client_ip_class"] == "own_server"


async def test_trusted_proxy_header_is_walked_from_the_right(tagless: Any) -> None:
    """Store `shop` trusts 127.0.0.1: the rightmost untrusted X-Forwarded-For entry wins."""
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}
    await tagless.post("/v1/track", no_ip(messageId="walk"), headers=headers)
    event = orjson.loads(tagless.stored_body("walk"))
    assert (event["client_ip"], event["client_ip_origin"]) == ("203.0.113.7", "header")
    assert event["client_ip_class"] == "documentation"


async def test_payload_ip_wins_over_headers_and_peer(tagless: Any) -> None:
    """A server-side sender's context.ip is the customer's IP, whatever the headers say."""
    headers = {"X-Forwarded-For": "203.0.113.7"}
    await tagless.post("/v1/track", track(messageId="payload"), headers=headers)
    event = orjson.loads(tagless.stored_body("payload"))
    assert (event["client_ip"], event["client_ip_origin"]) == ("81.2.69.142", "payload")
    assert event["client_ip_class"] == "public"
