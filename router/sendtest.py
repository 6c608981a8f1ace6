"""``tagless send-test``: one realistic event through a destination's test mode, PII redacted."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import orjson

from router import codec
from router.destination import Destination, TestAnswer
from router.privacy import USER_DATA_FIELDS
from router.testing.events import make_event

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
#: Keys whose values identify a person or device: the canonical ones and the platforms'.
_IDENTITY_KEYS: Final = frozenset(USER_DATA_FIELDS) | {
    "client_ip_address",
    "ip_address",
    "ip_override",
    "client_user_agent",
    "email",
    "phone",
    "device_id",
    "client_id",
    "app_instance_id",
    "external_id",
}


def test_event(store: str) -> Any:
    """A purchase happening now, with full identity, marked as a Tagless test."""
    now = datetime.now(UTC)
    event_id = f"tagless-test-{now:%Y%m%d%H%M%S}"
    return attrs.evolve(
        make_event(store=store, event_id=event_id, order_id=event_id),
        occurred_at=now,
        received_at=now,
    )


def redact(value: Any, key: str = "") -> Any:
    """The payload with identity values and hashes replaced, for printing."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if key in _IDENTITY_KEYS:
            return "<redacted>"
        if _HEX64.fullmatch(value):
            return "<sha256>"
    return value


def has_test_mode(destination: Destination[Any]) -> bool:
    """Whether the destination implements a test mode (else ``send_test`` only says it has none)."""
    return type(destination).send_test is not Destination.send_test


def payload(destination: Destination[Any], store: str) -> Any:
    """The test event as this destination would send it, identity redacted, for printing."""
    return redact(orjson.loads(codec.dumps(destination.map(test_event(store)))))


async def run(destination: Destination[Any], store: str) -> tuple[Any, TestAnswer]:
    """Map the test event, send it through the test mode; return the redacted payload and answer."""
    mapped = destination.map(test_event(store))
    answer = await destination.send_test([mapped])
    return redact(orjson.loads(codec.dumps(mapped))), answer
