"""The admin listener: open health and metrics, token-protected status and dead letters."""

from __future__ import annotations

import asyncio
from typing import Any


def admin_url(running: Any, path: str) -> str:
    return f"http://127.0.0.1:{running.app.ports['admin']}{path}"


async def test_metrics_count_events_by_name_and_client_ip_class(tagless: Any) -> None:
    """/metrics counts received events and how many carry a usable (public) client IP."""
    message = {"messageId": "m-1", "userId": "u", "event": "Order Completed"}
    message["context"] = {"ip": "81.2.69.142"}
    await tagless.post("/v1/track", message)
    # a server key's peer is the store's backend, never the customer
    await tagless.post("/v1/page", {"messageId": "m-2", "anonymousId": "a"})
    await tagless.post("/v1/track", {"messageId": "m-3"})  # invalid: no user
    for _ in range(100):
        if tagless.sink.delivered_events():
            break
        await asyncio.sleep(0.02)
    async with tagless.session.get(admin_url(tagless, "/metrics")) as response:
        assert response.status == 200
        text = await response.text()
    assert 'tagless_events_received_total{name="purchase",store="shop"} 1.0' in text
    ip = "tagless_events_client_ip_total"
    assert f'{ip}{{ip_class="public",origin="payload",store="shop"}} 1.0' in text
    assert f'{ip}{{ip_class="own_server",origin="peer",store="shop"}} 1.0' in text
    assert 'tagless_ingest_rejected_requests_total{code="invalid_event"} 1.0' in text


async def test_status_needs_the_admin_token(tagless: Any) -> None:
    """/api/status answers 401 without the bearer token and the lanes with it."""
    url = admin_url(tagless, "/api/status")
    async with tagless.session.get(url) as response:
        assert response.status == 401
    async with tagless.session.get(url, headers={"Authorization": "Bearer shop-key"}) as response:
        assert response.status == 401  # an ingest key is not an admin token
    headers = {"Authorization": "Bearer test-admin-token"}
    async with tagless.session.get(url, headers=headers) as response:
        assert response.status == 200
        lanes = (await response.json())["lanes"]
    assert [(lane["store"], lane["destination"]) for lane in lanes] == [("shop", "hook")]
