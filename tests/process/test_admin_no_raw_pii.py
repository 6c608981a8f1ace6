"""No raw email, phone, name, IP address, write key or token in any admin page, API answer or
log line: a real `tagless serve` gets events full of a test person's identity, its admin UI
and API are read every way there is, and everything it answered and logged is searched."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from harness import ADMIN_TOKEN, AUTHORIZATION, TaglessServer

from router.testing.fake_platform import Answer, FakePlatform, Recorded

EMAIL = "Zelda.Quimby@Example.com"
PHONE = "+1 415 555 0199"
IPV4 = "81.2.69.160"
IPV6 = "2a00:23c5:fe01:77::9"
SECRETS = ("shop-key", ADMIN_TOKEN, "spotify-secret-token", "not-the-admin-token-7")
#: What must appear nowhere, in any case; the phone also as its digits.
IDENTITY = (EMAIL, EMAIL.lower(), PHONE, "14155550199", "Zelda", "Quimby", IPV4, IPV6)

STORE_YAML = """\
store: shop
write_keys: [shop-key]
client_ip: {{trusted_proxies: [127.0.0.1/32], own_addresses: [192.0.2.10]}}
destinations:
  - {{id: spotify, type: spotify_capi, connection_id: conn-1, token: spotify-secret-token,
      endpoint: "{url}"}}
  - {{id: hook, type: webhook, url: "{url}/hook"}}
"""


def echo_refusal(request: Recorded) -> Answer | None:
    """The webhook refuses every event, echoing its identity back the way platforms do: the
    dead letter keeps the answer, so the admin UI must show it scrubbed."""
    if request.path != "/hook":
        return Answer(200, {"message": "SUCCESS"})
    return Answer(400, {"error": f"bad user {EMAIL} phone {PHONE} from {IPV4} / {IPV6}"})


def person(n: int, ip: str) -> dict[str, Any]:
    traits = {"email": EMAIL, "phone": PHONE, "firstName": "Zelda", "lastName": "Quimby"}
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": f"pii-{n}",
        "userId": f"user-{n}",
        "properties": {"order_id": f"order-{n}", "total": 30, "currency": "EUR"},
        "context": {"ip": ip, "userAgent": "Mozilla/5.0", "traits": traits},
    }


async def wait(condition: Callable[[], bool], what: str) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_no_page_api_answer_or_log_line_shows_raw_identity_or_secrets(
    tagless: Callable[..., TaglessServer],
) -> None:
    async with FakePlatform(responder=echo_refusal) as platform:
        server = tagless(platform.url)
        (server.config.directory / "stores" / "shop.yaml").write_text(
            STORE_YAML.format(url=platform.url)
        )
        await server.start()
        ingest = server.config.ingest_url
        admin = f"http://127.0.0.1:{server.config.admin_port}"
        answers: dict[str, tuple[int, str]] = {}
        jar = aiohttp.DummyCookieJar()
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            batch = {"batch": [person(1, IPV4), person(2, IPV6)]}
            headers = {"Authorization": AUTHORIZATION}
            async with http.post(f"{ingest}/v1/batch", json=batch, headers=headers) as answer:
                assert answer.status == 200, await answer.text()
            await wait(lambda: len(_refused(platform)) >= 2, "both events dead at the webhook")
            await wait(lambda: _accepted(platform, "/capi-direct/events/") >= 2, "Spotify")
            await _read_everything(http, admin, answers)
        await server.stop()
    logs = "\n".join(path.read_text(errors="replace") for path in server.logs)
    assert "delivery_dead" in logs  # the run did log its events
    found = _leaks({**{f"answer {k}": v[1] for k, v in answers.items()}, "logs": logs})
    assert not found, "raw identity or secrets shown:\n" + "\n".join(found)
    _all_answered(answers)


def _refused(platform: FakePlatform) -> list[Recorded]:
    return [r for r in platform.requests if r.path == "/hook" and r.status == 400]


def _accepted(platform: FakePlatform, path: str) -> int:
    return sum(
        len(r.json()["conversion_events"]["events"])
        for r in platform.requests
        if r.path == path and r.status == 200
    )


async def _read_everything(
    http: aiohttp.ClientSession, admin: str, answers: dict[str, tuple[int, str]]
) -> None:
    """Every page and API answer, by bearer token and by a signed-in session, keyed by path."""
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    html = {**bearer, "Accept": "text/html"}
    for query in ("order-1", "pii-2", "user-1", EMAIL, EMAIL.upper()):
        for path in ("/events", "/api/events"):
            async with http.get(admin + path, params={"q": query}, headers=html) as answer:
                answers[f"{path}?q={query}"] = (answer.status, await answer.text())
    paths = (
        "/", "/?window=1h", "/identity", "/identity?store=shop&window=7d", "/dead-letters",
        "/api/overview?window=24h", "/api/identity?store=shop", "/api/dead-letters",
        "/api/status", "/api/stores/shop/dead-letters", "/metrics", "/readyz", "/healthz",
    )  # fmt: skip
    for path in paths:
        async with http.get(admin + path, headers=html) as answer:
            answers[path] = (answer.status, await answer.text())
    replay = {"store": "shop", "dry_run": True}
    async with http.post(admin + "/api/replay", json=replay, headers=bearer) as answer:
        answers["/api/replay"] = (answer.status, await answer.text())
    # a person signing in: a wrong token first (never shown back), then the right one
    async with http.get(admin + "/login") as answer:
        page = await answer.text()
        nonce = _field(page, "csrf_token")
        cookie = {"Cookie": f"tagless_login={answer.cookies['tagless_login'].value}"}
    for token in (SECRETS[3], ADMIN_TOKEN):
        form = {"token": token, "csrf_token": nonce, "next": "/dead-letters"}
        async with http.post(
            admin + "/login", data=form, headers=cookie, allow_redirects=False
        ) as answer:
            answers[f"/login with {'a wrong' if token != ADMIN_TOKEN else 'the'} token"] = (
                200 if answer.status in (303, 401) else answer.status,
                await answer.text() + str(answer.headers),
            )
            session = answer.cookies.get("tagless_session")
    assert session is not None
    signed_in = {"Cookie": f"tagless_session={session.value}"}
    async with http.get(admin + "/dead-letters", headers=signed_in) as answer:
        page = await answer.text()
        answers["/dead-letters (signed in)"] = (answer.status, page)
    rows = re.findall(r'name="one" value="([^"]+)"', page)
    assert rows, "no dead letter listed"
    form = {"csrf_token": _field(page, "csrf_token"), "scope": "all"}
    async with http.post(admin + "/dead-letters/replay", data=form, headers=signed_in) as answer:
        answers["/dead-letters/replay (dry run)"] = (answer.status, await answer.text())


def _field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert match is not None, f"no {name} in the page"
    return match.group(1)


def _leaks(texts: dict[str, str]) -> list[str]:
    """Where any identity value or secret appears (any case, JSON-escaped or not)."""
    found = []
    for where, text in texts.items():
        variants = (text, text.replace("\\/", "/"), json.dumps(text))
        lowered = " ".join(variants).lower()
        for value in (*IDENTITY, *SECRETS):
            if value.lower() in lowered:
                at = lowered.index(value.lower())
                found.append(f"{where}: {value!r} in …{lowered[max(0, at - 60) : at + 60]}…")
    return found


def _all_answered(answers: dict[str, tuple[int, str]]) -> None:
    """Every surface answered 200 (a failed page proves nothing about what it would show)."""
    failed = {path: status for path, (status, _) in answers.items() if status != 200}
    assert not failed, failed
