"""Consent policy per destination: send, send without user data, or skip, decided at append."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from router.testing.fake_platform import FakePlatform
from router.testing.server import RunningTagless, write_config_dir

STORE = """\
store: shop
write_keys: [shop-key]
destinations:
  - {{id: full, type: webhook, url: "{url}/full", consent: {{denied: send, unknown: send}}}}
  - {{id: strip, type: webhook, url: "{url}/strip"}}
  - id: eea
    type: webhook
    url: "{url}/eea"
    consent: {{denied: skip, unknown: without_user_data}}
"""


def message(event_id: str, consent: dict[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "ip": "81.2.69.142",
        "userAgent": "Mozilla/5.0",
        "traits": {"email": "jane@example.com", "firstName": "Jane"},
    }
    if consent is not None:
        context["consent"] = consent
    return {
        "type": "track",
        "messageId": event_id,
        "userId": "u-1",
        "event": "Order Completed",
        "context": context,
    }


async def test_each_destination_gets_what_its_consent_policy_allows(tmp_path: Path) -> None:
    """Granted goes everywhere whole; denied is stripped or skipped; unknown per policy."""
    async with FakePlatform() as platform:
        config = write_config_dir(tmp_path, STORE.format(url=platform.url))
        running = await RunningTagless(config).start()
        try:
            batch = [
                message("granted", {"ad_user_data": "granted", "ad_personalization": "granted"}),
                message("denied", {"ad_user_data": "denied"}),
                message("unknown", None),
            ]
            answer = await running.post("/v1/batch", {"batch": batch}, key="shop-key")
            assert answer[0] == 200, answer
            for _ in range(200):
                if len(platform.requests) >= 3:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
        finally:
            await running.stop()

    def received(path: str) -> dict[str, dict[str, Any]]:
        return {
            e["event_id"]: e
            for r in platform.requests
            if r.path == path
            for e in r.json()["events"]
        }

    full, strip, eea = received("/full"), received("/strip"), received("/eea")
    assert sorted(full) == ["denied", "granted", "unknown"]
    assert all(e["emails"] == ["jane@example.com"] for e in full.values())
    assert sorted(strip) == ["denied", "granted", "unknown"]
    assert strip["granted"]["emails"] == ["jane@example.com"]
    assert strip["unknown"]["client_ip"] == "81.2.69.142"
    denied = strip["denied"]
    assert (denied["emails"], denied["first_name"], denied["client_ip"], denied["user_id"]) == (
        [],
        None,
        None,
        None,
    )
    assert denied["value"] is None and denied["name"] == "purchase"  # the conversion stays
    assert sorted(eea) == ["granted", "unknown"]  # denied: skipped
    assert eea["unknown"]["emails"] == [] and eea["unknown"]["user_agent"] is None
