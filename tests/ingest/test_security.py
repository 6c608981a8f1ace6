"""Security tests: exact size limits, deep nesting, constant-time keys, no PII in logs."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from router.ingest import auth
from router.ingest.auth import KeyRing
from router.testing.fake_platform import Answer

LIMIT = 512_000  # server.max_request_bytes default


def body_of_size(size: int) -> bytes:
    """A valid single track call padded to exactly ``size`` bytes."""
    message = {"messageId": "pad", "userId": "u", "event": "Padded", "properties": {"p": ""}}
    base = len(orjson.dumps(message))
    message["properties"] = {"p": "x" * (size - base)}
    body = orjson.dumps(message)
    assert len(body) == size
    return body


async def test_one_byte_over_the_request_limit_is_refused(tagless: Any) -> None:
    """A body of exactly the limit is read; one byte more is 413 (the event limit answers for
    the first, the request limit for the second)."""
    at_limit, _ = await tagless.post("/v1/track", data=body_of_size(LIMIT))
    over, body = await tagless.post("/v1/track", data=body_of_size(LIMIT + 1))
    assert over == 413 and "request body" in body["error"]["message"]
    assert at_limit == 413  # 512,000 bytes is far over the 32 KB event limit
    ok, _ = await tagless.post("/v1/track", data=body_of_size(32_768))
    too_big, body = await tagless.post("/v1/track", data=body_of_size(32_769))
    assert (ok, too_big) == (200, 413)


@pytest.mark.parametrize("depth", [2_000, 100_000])
async def test_deeply_nested_json_is_a_400(tagless: Any, depth: int) -> None:
    """JSON nested deeper than the parser allows is refused as malformed, not a crash."""
    nested = b'{"messageId":"n","userId":"u","event":"E","properties":{"a":' + b"[" * depth
    nested += b"]" * depth + b"}}"
    status, body = await tagless.post("/v1/track", data=nested)
    assert status in (400, 413)
    assert body["success"] is False


def test_write_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every lookup compares the candidate with every known key through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    ring = KeyRing([("key-a", "a", "server"), ("key-b", "b", "browser"), ("key-c", "c", "server")])
    assert ring.store_for("key-b") == "b"
    assert len(calls) == 3  # no early exit on the hit
    assert ring.store_for("nope") is None
    assert ring.store_for(None) is None
    assert len(calls) == 9


PII = [
    "jane.secret@example.com",
    "+44 7700 900123",
    "81.2.69.142",
    "Mozilla/5.0 (PIIBrowser)",
    "Janet",
    "shop-key",
    "test-admin-token",
]


async def test_no_pii_secrets_or_tokens_reach_the_logs(
    tagless_factory: Callable[..., Any],
) -> None:
    """Accepted, invalid, unauthorised and dead-lettered events log ids and reasons only."""
    with capture_logs() as logs:
        running = await tagless_factory()
        running.sink.default = Answer(400, {"error": "bad jane.secret@example.com"})
        message = {
            "messageId": "pii-1",
            "userId": "u",
            "event": "Order Completed",
            "context": {
                "ip": "81.2.69.142",
                "userAgent": "Mozilla/5.0 (PIIBrowser)",
                "traits": {"email": "jane.secret@example.com", "phone": "+44 7700 900123"},
            },
            "traits": {"firstName": "Janet"},
        }
        await running.post("/v1/track", message)
        await running.post("/v1/track", {**message, "messageId": "pii-2", "userId": None})
        await running.post("/v1/track", message, key="wrong")
        await running.post("/v1/track", {**message, "context": {"ip": 5}})
        for _ in range(200):
            if any(entry.get("event") == "delivery_dead" for entry in logs):
                break
            await asyncio.sleep(0.02)
    assert any(entry.get("event") == "delivery_dead" for entry in logs)
    text = repr(logs)
    leaked = [value for value in PII if value in text]
    assert leaked == []
