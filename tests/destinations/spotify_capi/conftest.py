"""A fake Spotify CAPI that enforces the documented request rules, and destinations aimed at it.

Spotify documents its success answer (200 ``{"message":"SUCCESS"}`` [S]) but not its error
bodies: the fake's ``{"message": ..., "sp_trace_id": ...}`` errors are a plausible guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from destinations.spotify_capi import SpotifyCapiConfig, SpotifyCapiDestination
from router.http import HttpClient
from router.secret import Secret
from router.testing.fake_platform import Answer, FakePlatform, Recorded

TOKEN = "capi-token-abc123"
CONNECTION_ID = "3f2b8c1e-0a4d-4e6f-9b7a-1c2d3e4f5a6b"
EVENT_NAMES = frozenset(
    {"VIEW", "PRODUCT", "CHECK_OUT", "ADD_TO_CART", "PURCHASE", "LEAD", "SIGN_UP"}
    | {f"CUSTOM_EVENT_{n}" for n in range(1, 6)}
)
USER_KEYS = frozenset({"ip_address", "device_id", "hashed_emails", "hashed_phone_number"})
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
HEX64 = re.compile(r"[0-9a-f]{64}")


class SpotifyRules:
    """Checks one request against Spotify's documented rules; the first broken one is the answer."""

    def __init__(self, batch_limit: int = 100) -> None:
        self.batch_limit = batch_limit

    def __call__(self, seen: Recorded) -> Answer:
        problem = self.problem(seen)
        if problem is None:
            return Answer(200, {"message": "SUCCESS"})
        status, message = problem
        return Answer(status, {"message": message, "sp_trace_id": "trace-0001"})

    def problem(self, seen: Recorded) -> tuple[int, str] | None:
        if (seen.method, seen.path) != ("POST", "/capi-direct/events/"):
            return 404, f"no route {seen.method} {seen.path}"
        if seen.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, "invalid access token"
        if not seen.headers.get("Content-Type", "").startswith("application/json"):
            return 415, "expected application/json"
        try:
            body = orjson.loads(seen.body)
            wrapper = body["conversion_events"]
            events = wrapper["events"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 400, "body must be {conversion_events: {capi_connection_id, events}}"
        if wrapper.get("capi_connection_id") != CONNECTION_ID:
            return 403, "token does not own this connection"
        if not isinstance(events, list) or not 1 <= len(events) <= self.batch_limit:
            return 400, f"events must hold 1 to {self.batch_limit} events"
        for index, event in enumerate(events):
            broken = event_problem(event)
            if broken is not None:
                return 400, f"events[{index}]: {broken}"
        return None


def event_problem(event: dict[str, Any]) -> str | None:
    """What is wrong with one ConversionEvent, or None."""
    if event.get("event_name") not in EVENT_NAMES:
        return f"unknown event_name {event.get('event_name')!r}"
    if not isinstance(event.get("event_id"), str) or not event["event_id"]:
        return "event_id required"
    moment = event.get("event_time")
    if not isinstance(moment, str) or not TIME.fullmatch(moment):
        return f"event_time must be RFC 3339 UTC with milliseconds, got {moment!r}"
    if datetime.fromisoformat(moment) > datetime.now(UTC):
        return "event_time must be in the past"
    broken = user_problem(event.get("user_data"))
    if broken is not None:
        return broken
    details = event.get("event_details", {})
    if "content_category" in details and not str(details["content_category"]).isdigit():
        return "content_category must be a Google Product Taxonomy id"
    if "amount" in details and not isinstance(details["amount"], int | float):
        return "amount must be a number"
    url = event.get("event_source_url")
    if url is not None and not url.startswith(("http://", "https://")):
        return "event_source_url must start with http:// or https://"
    if event.get("action_source", "WEB") not in ("WEB", "APP", "OFFLINE"):
        return "bad action_source"
    if not isinstance(event.get("opt_out_targeting", False), bool):
        return "opt_out_targeting must be a boolean"
    return None


def user_problem(user: Any) -> str | None:
    if not isinstance(user, dict) or not user or set(user) - USER_KEYS:
        return f"user_data needs one or more of {sorted(USER_KEYS)}"
    hashes = [*user.get("hashed_emails", []), user.get("hashed_phone_number", "0" * 64)]
    if not all(isinstance(h, str) and HEX64.fullmatch(h) for h in hashes):
        return "hashed fields must be lowercase SHA-256 hex"
    if "ip_address" in user and not ipaddress.ip_address(user["ip_address"]).is_global:
        return "ip_address is not a public address"
    return None


@pytest.fixture
async def spotify() -> AsyncIterator[FakePlatform]:
    """A fake Spotify CAPI enforcing :class:`SpotifyRules` (batches of at most 100)."""
    async with FakePlatform(responder=SpotifyRules()) as server:
        yield server


Factory = Callable[..., SpotifyCapiDestination]


@pytest.fixture
def make_destination(spotify: FakePlatform, http: HttpClient) -> Factory:
    """Build a destination aimed at the fake; keyword arguments override config keys."""

    def build(**overrides: Any) -> SpotifyCapiDestination:
        settings: dict[str, Any] = {
            "connection_id": CONNECTION_ID,
            "token": Secret(TOKEN),
            "endpoint": spotify.url,
            "custom_events": {"Gift Card Redeemed": "CUSTOM_EVENT_1"},
            **overrides,
        }
        return SpotifyCapiDestination(SpotifyCapiConfig(**settings), http)

    return build
