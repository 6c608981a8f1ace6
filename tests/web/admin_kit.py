"""The admin tests' kit: a Tagless whose webhook refuses events until told otherwise, and an
HTTP client of its admin listener."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from router.testing.fake_platform import Answer, FakePlatform, Recorded
from router.testing.server import RunningTagless

TOKEN = "test-admin-token"
STORE_YAML = """\
store: shop
write_keys: [shop-key]
destinations:
  - {{id: hook, type: webhook, url: "{url}/hook"}}
"""


class Admin:
    """A Tagless with a webhook to a fake platform (refusing with 400 while ``refuse``), and
    an HTTP client of its admin listener that keeps cookies by hand (aiohttp's jar ignores
    cookies of an IP address)."""

    def __init__(self, running: RunningTagless, hook: FakePlatform) -> None:
        self.running = running
        self.hook = hook
        self.refuse = True
        self.base = f"http://127.0.0.1:{running.app.ports['admin']}"
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self.cookies: dict[str, str] = {}

    def answer(self, _: Recorded) -> Answer | None:
        return Answer(400, {"error": "bad request"}) if self.refuse else None

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, dict[str, str], str]:
        """Status, headers and text of one request, sending and keeping the cookies."""
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        async with self.http.request(
            method, self.base + path, headers=sent, allow_redirects=False, **kwargs
        ) as response:
            for name, morsel in response.cookies.items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
            return response.status, dict(response.headers), await response.text()

    async def sign_in(self, token: str = TOKEN) -> tuple[int, dict[str, str]]:
        """Open the login page and post the token with its form's CSRF nonce."""
        _, _, html = await self.request("GET", "/login")
        nonce = form_csrf(html)
        status, headers, _ = await self.request(
            "POST", "/login", data={"token": token, "csrf_token": nonce, "next": "/dead-letters"}
        )
        return status, headers

    async def csrf(self) -> str:
        """The session's CSRF token, as a page's forms carry it."""
        status, _, html = await self.request(
            "GET", "/dead-letters", headers={"Accept": "text/html"}
        )
        assert status == 200, html
        return form_csrf(html)

    async def dead(self, count: int) -> None:
        """Send ``count`` orders and wait until each is a dead letter of the webhook."""
        for n in range(count):
            body = {"messageId": f"order-{n}", "userId": f"u-{n}", "event": "Order Completed"}
            status, answer = await self.running.post("/v1/track", body, key="shop-key")
            assert status == 200, answer

        async def all_dead() -> bool:
            return len(await self.running.app.outbox.dead_letters("shop")) >= count

        await wait_for(all_dead, f"{count} dead letters")


def form_csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert match is not None, "no csrf_token field in the page"
    return match.group(1)


async def wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, within: float = 30.0
) -> None:
    """Wait until ``await condition()`` is true, checking every 20 ms (generous under load)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
