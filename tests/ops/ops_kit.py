"""Helpers of the operations tests: a store with Spotify and a filtered webhook, Segment
messages with a known identity, and the admin API called with the admin token."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from router.testing.server import RunningTagless, write_config_dir

ADMIN_TOKEN = "test-admin-token"
EMAIL = "Jane.Roe@Example.com"
PHONE = "+44 20 7946 0123"
CUSTOMER_IP = "81.2.69.142"
CLOUDFLARE_IP = "104.16.5.9"

STORE = """\
store: shop
write_keys: [shop-key]
client_ip: {{trusted_proxies: [127.0.0.1/32]}}
destinations:
  - id: spotify
    type: spotify_capi
    connection_id: "3f2b8c1e-0a4d-4e6f-9b7a-1c2d3e4f5a6b"
    token: capi-token-abc123
    endpoint: "{url}"
  - id: leads
    type: webhook
    url: "{url}/leads"
    events: {{allow: [generate_lead]}}
"""


async def start(root: Path, store: str, url: str, outbox_url: str | None = None) -> RunningTagless:
    """A Tagless serving ``store`` (a STORE-like template) whose platforms are at ``url``;
    its outbox the SQLite file, or the PostgreSQL database at ``outbox_url``."""
    config = write_config_dir(root, store.format(url=url), outbox_url=outbox_url)
    return await RunningTagless(config).start()


def message(message_id: str, event: str = "Order Completed", **overrides: Any) -> dict[str, Any]:
    """A Segment track call of customer ``Jane Roe``, from ``CUSTOMER_IP`` unless told."""
    context: dict[str, Any] = {
        "ip": overrides.pop("ip", CUSTOMER_IP),
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "traits": overrides.pop(
            "traits", {"email": EMAIL, "phone": PHONE, "firstName": "Jane", "lastName": "Roe"}
        ),
    }
    if context["ip"] is None:
        del context["ip"]
    return {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": "2026-11-20T14:30:05.123Z",
        "userId": overrides.pop("user_id", "customer-7"),
        "properties": {"order_id": "WC-7781", "revenue": 42.5, "currency": "EUR", **overrides},
        "context": context,
    }


async def eventually(check: Callable[[], Any], seconds: float = 30.0) -> Any:
    """Wait for ``check`` (sync or async) to answer something true; generous for busy cores."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def admin_get(
    running: RunningTagless, path: str, *, token: str | None = ADMIN_TOKEN, **params: str
) -> tuple[int, Any, str]:
    """GET from the admin listener; status, decoded JSON and the raw text of the answer."""
    base = f"http://127.0.0.1:{running.app.ports['admin']}"
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, params=params, headers=headers) as response,
    ):
        text = await response.text()
        return response.status, await response.json(content_type=None), text
