"""A fake Graph API enforcing Meta's Conversions API rules (destinations/meta_capi/README.md).

One bad event fails the whole request with the Graph error body for code 100, as Meta does;
a wrong token gets code 190. Every accepted event is kept in ``received``.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

from router.testing.fake_platform import Answer, FakePlatform, Recorded

PIXEL: Final = "1234567890"
TOKEN: Final = "EAAB-test-token"
VERSION: Final = "v23.0"
MAX_AGE_SECS: Final = 7 * 86_400
ACTION_SOURCES: Final = frozenset(
    {
        "website",
        "app",
        "email",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    }
)
HASHED_KEYS: Final = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
#: A few ISO 4217 codes: enough to refuse a made-up one such as ``XYZ``.
CURRENCIES: Final = frozenset({"usd", "eur", "gbp", "chf", "sek", "nok", "dkk", "pln", "jpy"})
_HEX64: Final = re.compile(r"[0-9a-f]{64}")


def graph_error(code: int, message: str, *, subcode: int | None = None) -> dict[str, Any]:
    """A Graph error body as Meta sends it (Graph API error handling)."""
    return {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_subcode": subcode,
            "error_user_title": message,
            "error_user_msg": message,
            "fbtrace_id": "AfakeTrace",
        }
    }


def _hashed(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(isinstance(v, str) and _HEX64.fullmatch(v) for v in values)


def problem(event: Any, now: float) -> str | None:
    """Why Meta would refuse this one server event, or None."""
    if not isinstance(event, dict):
        return "event is not an object"
    name = event.get("event_name")
    if not isinstance(name, str) or not name:
        return "event_name missing"
    seconds = event.get("event_time")
    if not isinstance(seconds, int) or len(str(seconds)) != 10:
        return "event_time must be Unix seconds"
    if now - seconds > MAX_AGE_SECS:
        return "event_time is more than 7 days ago"
    source = event.get("action_source")
    if source not in ACTION_SOURCES:
        return f"action_source {source!r} invalid"
    users = event.get("user_data")
    if not isinstance(users, dict) or not users:
        return "user_data missing"
    if source == "website" and not (
        users.get("client_user_agent") and event.get("event_source_url")
    ):
        return "website events need client_user_agent and event_source_url"
    for key in HASHED_KEYS:
        if key in users and not _hashed(users[key]):
            return f"user_data.{key} is not a SHA-256 hash"
    ip = users.get("client_ip_address")
    if ip is not None and not ipaddress.ip_address(ip).is_global:
        return "client_ip_address is not a public address"
    custom = event.get("custom_data") or {}
    currency = custom.get("currency")
    if currency is not None and str(currency).lower() not in CURRENCIES:
        return f"currency {currency!r} is not a valid ISO 4217 code"
    if "value" in custom and not isinstance(custom["value"], int | float):
        return "custom_data.value must be a number"
    return None


class FakeMeta:
    """The responder of a :class:`FakePlatform` that speaks the Conversions API."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.received: list[dict[str, Any]] = []
        self.test_codes: list[str | None] = []
        self.platform = FakePlatform(responder=self)

    @property
    def events_path(self) -> str:
        return f"/{VERSION}/{PIXEL}/events"

    def __call__(self, seen: Recorded) -> Answer:
        if seen.query.get("access_token") != TOKEN:
            return Answer(400, graph_error(190, "Invalid OAuth access token."))
        if seen.method == "GET" and seen.path == f"/{VERSION}/{PIXEL}":
            return Answer(200, {"id": PIXEL})
        if seen.method != "POST" or seen.path != self.events_path:
            return Answer(400, graph_error(100, "Unsupported request", subcode=33))
        try:
            body = orjson.loads(seen.body)
        except orjson.JSONDecodeError:
            return Answer(400, graph_error(100, "body is not JSON"))
        data = body.get("data")
        if not isinstance(data, list) or not 1 <= len(data) <= 1000:
            return Answer(400, graph_error(100, "data must hold 1 to 1000 events"))
        for i, event in enumerate(data):
            why = problem(event, self.now())
            if why is not None:  # one bad event: nothing of the request is processed
                return Answer(400, graph_error(100, f"data[{i}]: {why}", subcode=2804003))
        self.received.extend(data)
        self.test_codes.append(body.get("test_event_code"))
        return Answer(200, {"events_received": len(data), "messages": [], "fbtrace_id": "Aok"})
