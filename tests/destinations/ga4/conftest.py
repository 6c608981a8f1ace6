"""GA4 test fixtures: a fake Measurement Protocol server that enforces the documented rules."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from router.testing.fake_platform import Answer, FakePlatform, Recorded

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
HASH = re.compile(r"[0-9a-f]{64}")
RESERVED_NAMES = frozenset({"session_start", "first_visit", "user_engagement", "ad_click", "error"})
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
LONG_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
WINDOW_MICROS = 72 * 3600 * 1_000_000


def message(path: str, description: str, code: str) -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


class Ga4Fake:
    """Answers like GA4: ``/mp/collect`` says 204 to anything; ``/debug/mp/collect`` checks
    the documented rules (Google's pages, listed in the README) and lists what breaks them."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now

    def __call__(self, seen: Recorded) -> Answer:
        if seen.path == "/mp/collect":
            return Answer(204, b"")
        if seen.path == "/debug/mp/collect":
            return Answer(200, {"validationMessages": self.check(seen.body)})
        return Answer(404, {"error": "not found"})

    def check(self, body: bytes) -> list[dict[str, str]]:
        if len(body) >= 130_000:
            return [message("", "payload is 130 kB or more", "VALUE_OUT_OF_BOUNDS")]
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return [
                message("", "Unable to parse Measurement Protocol JSON payload.", "VALUE_INVALID")
            ]
        found: list[dict[str, str]] = []
        if not request.get("client_id") and not request.get("app_instance_id"):
            found.append(message("client_id", "client_id is required", "VALUE_REQUIRED"))
        events = request.get("events", [])
        if len(events) > 25:
            found.append(message("events", "at most 25 events", "EXCEEDED_MAX_ENTITIES"))
        found += self._check_user_data(request.get("user_data", {}))
        for index, event in enumerate(events):
            found += self._check_event(f"events[{index}]", event, request)
        return found

    def _check_user_data(self, user_data: dict[str, Any]) -> list[dict[str, str]]:
        hashes = [
            *user_data.get("sha256_email_address", []),
            *user_data.get("sha256_phone_number", []),
        ]
        for address in user_data.get("address", []):
            hashes += [v for k, v in address.items() if k.startswith("sha256_")]
        bad = [h for h in hashes if not HASH.fullmatch(h)]
        return [
            message("user_data", f"not a lowercase SHA-256 hex: {h}", "VALUE_INVALID") for h in bad
        ]

    def _check_event(
        self, path: str, event: dict[str, Any], request: dict[str, Any]
    ) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        name = event.get("name", "")
        params = event.get("params", {})
        if not NAME.fullmatch(name):
            found.append(message(path, f"Event has invalid name [{name}].", "NAME_INVALID"))
        elif name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
            found.append(message(path, f"Event name [{name}] is reserved.", "NAME_RESERVED"))
        if len(params) > 25:
            found.append(message(path, "at most 25 params", "EXCEEDED_MAX_ENTITIES"))
        for key, value in params.items():
            if not NAME.fullmatch(key):
                found.append(message(f"{path}.params", f"invalid param name {key}", "NAME_INVALID"))
            if isinstance(value, str) and len(value) > LONG_VALUES.get(key, 100):
                found.append(
                    message(f"{path}.params.{key}", "value too long", "VALUE_OUT_OF_BOUNDS")
                )
        if not (
            isinstance(params.get("engagement_time_msec"), int)
            and params["engagement_time_msec"] >= 1
        ):
            found.append(
                message(f"{path}.params", "engagement_time_msec must be >= 1", "VALUE_INVALID")
            )
        if name == "purchase" and not params.get("transaction_id"):
            found.append(message(f"{path}.params", "transaction_id is required", "VALUE_REQUIRED"))
        if "value" in params and not params.get("currency"):
            found.append(
                message(f"{path}.params", "currency is required with value", "VALUE_REQUIRED")
            )
        micros = event.get("timestamp_micros", request.get("timestamp_micros"))
        now_micros = int(self.now() * 1_000_000)
        if micros is not None and not now_micros - WINDOW_MICROS <= micros <= now_micros:
            found.append(
                message(path, "timestamp_micros outside the last 72 hours", "VALUE_OUT_OF_BOUNDS")
            )
        return found


@pytest.fixture
async def ga4() -> AsyncIterator[FakePlatform]:
    """A fake GA4: collect and validation endpoints, on a real local server."""
    async with FakePlatform(responder=Ga4Fake()) as server:
        yield server
