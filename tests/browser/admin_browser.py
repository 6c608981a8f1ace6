"""The admin UI browser tests' kit: a Tagless with Spotify and a webhook at a fake platform,
Chromium driven by Playwright, signed in through the login page, screenshots kept."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from router.testing.fake_platform import Answer, FakePlatform, Recorded
from router.testing.server import RunningTagless, write_config_dir

CHROMIUM = Path("/usr/bin/chromium")
#: Playwright's own browser download cannot work here: Debian's Chromium, kept off the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "test-admin-token"
#: Where screenshots of every page go (kept after the run: an artifact to look at).
SCREENSHOTS = Path(os.environ.get("TAGLESS_SCREENSHOTS", Path(__file__).parent / "screenshots"))
STORE_YAML = """\
store: shop
write_keys: [shop-key]
destinations:
  - {{id: spotify, type: spotify_capi, connection_id: conn-1, token: spotify-token,
      endpoint: "{url}"}}
  - {{id: hook, type: webhook, url: "{url}/hook"}}
"""


class Shop:
    """A running Tagless for store ``shop``: ``spotify`` (accepting) and ``hook`` (refusing
    with 400 while ``refuse``), both at one fake platform."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refuse = True
        self.platform = FakePlatform(responder=self._answer)
        self.running: RunningTagless | None = None

    def _answer(self, request: Recorded) -> Answer | None:
        if request.path == "/hook" and self.refuse:
            return Answer(400, {"error": "refused"})
        return Answer(200, {"message": "SUCCESS"})

    async def start(self) -> Shop:
        await self.platform.start()
        config = write_config_dir(self.root, STORE_YAML.format(url=self.platform.url))
        self.running = await RunningTagless(config).start()
        return self

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()
        await self.platform.stop()

    @property
    def admin(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.app.ports['admin']}"

    async def track(self, message: dict[str, Any]) -> None:
        assert self.running is not None
        status, answer = await self.running.post("/v1/track", message, key="shop-key")
        assert status == 200, answer

    def received(self, path: str) -> list[dict[str, Any]]:
        """Events the platform accepted on ``path`` (Spotify's or the webhook's)."""
        found = []
        for request in self.platform.requests:
            if request.path != path or request.status != 200:
                continue
            body = request.json()
            events = body["events"] if "events" in body else body["conversion_events"]["events"]
            found.extend(events)
        return found


async def eventually(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Wait until ``condition`` holds, at most 30 s (generous on two busy cores)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30.0
    while True:
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def sign_in(page: Any, admin: str, path: str = "/") -> None:
    """Open ``path``: the admin UI answers with its login form; sign in with the token."""
    await page.goto(admin + path)
    await screenshot(page, "login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("form.login button[type=submit]")
    await page.wait_for_url(admin + path)


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


async def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as ``<SCREENSHOTS>/<name>.png``."""
    path = screenshot_path(name)
    await page.screenshot(path=str(path), full_page=True)
    return path
