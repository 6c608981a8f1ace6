"""Admin authentication: bearer token or signed-in session, CSRF on writes, 401 for the rest."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest
from admin_kit import TOKEN, Admin

from router.admin import admin_app
from router.web import throttle
from router.web.auth import is_open, local_target


def admin_routes(admin: Admin) -> list[tuple[str, str]]:
    """Every (method, path) the admin listener serves, variables filled in."""
    app = admin_app(admin.running.app)
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        if route.method == "HEAD":
            continue
        found.append((route.method, re.sub(r"\{[^}]+\}", "shop", path)))
    return found


async def test_every_path_but_health_metrics_and_sign_in_needs_the_admin_token(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token, a wrong token, the ingest write key, or a token sent as Basic: 401 on every
    page and API path (GET and POST); health and metrics stay open."""
    monkeypatch.setattr(throttle, "MAX_FAILURES", 10_000)  # its own test below
    routes = admin_routes(admin)
    guarded = [(m, p) for m, p in routes if not is_open(p)]
    assert {"/dead-letters", "/api/dead-letters", "/api/replay", "/api/status"} <= {
        path for _, path in guarded
    }
    refusals = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer shop-key"},
        {"Authorization": "Basic " + "c2hvcC1rZXk6"},  # shop-key as Segment sends it
        {"Authorization": TOKEN},
    ]
    for method, path in guarded:
        for headers in refusals:
            status, _, body = await admin.request(method, path, headers=headers)
            assert status == 401, (method, path, headers, body)
    for path in ("/healthz", "/readyz", "/metrics"):
        status, _, _ = await admin.request("GET", path)
        assert status == 200, path
    status, _, _ = await admin.request(
        "GET", "/api/dead-letters", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200


async def test_a_browser_without_a_session_gets_the_sign_in_form_with_401(admin: Admin) -> None:
    """A page opened without a session answers 401 with the login form, which comes back to
    the page asked for."""
    status, headers, html = await admin.request(
        "GET", "/dead-letters?store=shop", headers={"Accept": "text/html"}
    )
    assert status == 401
    assert headers["Content-Type"].startswith("text/html")
    assert 'action="/login"' in html
    assert 'name="next" value="/dead-letters?store=shop"' in html


async def test_sign_in_exchanges_the_token_for_a_strict_http_only_session_cookie(
    admin: Admin,
) -> None:
    """The right token yields a session cookie (HttpOnly, SameSite=Strict) that opens the API;
    a wrong token or the write key does not."""
    for wrong in ("wrong-token", "shop-key"):
        status, headers = await admin.sign_in(wrong)
        assert status == 401
        assert "tagless_session" not in admin.cookies
    status, headers = await admin.sign_in()
    assert status == 303
    assert headers["Location"] == "/dead-letters"
    cookie = next(
        c for c in re.split(r", (?=\w+=)", headers["Set-Cookie"]) if "tagless_session" in c
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    status, _, _ = await admin.request("GET", "/api/dead-letters")
    assert status == 200


async def test_sign_in_needs_the_login_forms_own_csrf_nonce(admin: Admin) -> None:
    """A login post without the nonce of a login page this browser opened is refused."""
    status, _, _ = await admin.request(
        "POST", "/login", data={"token": TOKEN, "csrf_token": "made-up"}
    )
    assert status == 403
    assert "tagless_session" not in admin.cookies


async def test_cookie_writes_need_the_sessions_csrf_token(admin: Admin) -> None:
    """With a session cookie, POSTs to the API and forms are refused without the session's
    CSRF token, with another one, or from another site's origin; accepted with it."""
    await admin.sign_in()
    csrf = await admin.csrf()
    body = orjson.dumps({"store": "shop", "dry_run": True})
    json_type = {"Content-Type": "application/json"}
    for headers in (
        json_type,
        {**json_type, "X-CSRF-Token": "not-the-token"},
        {**json_type, "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    ):
        status, _, text = await admin.request("POST", "/api/replay", data=body, headers=headers)
        assert status == 403, text
    form = {"store": "shop", "scope": "all"}
    status, _, _ = await admin.request("POST", "/dead-letters/replay", data=form)
    assert status == 403
    status, _, text = await admin.request(
        "POST", "/api/replay", data=body, headers={**json_type, "X-CSRF-Token": csrf}
    )
    assert status == 200, text
    assert orjson.loads(text)["dry_run"] is True
    status, _, _ = await admin.request(
        "POST", "/dead-letters/replay", data={**form, "csrf_token": csrf}
    )
    assert status == 200


async def test_a_bearer_request_needs_no_csrf_token(admin: Admin) -> None:
    """Scripts with the bearer token post without CSRF (a browser never sends that header)."""
    status, _, text = await admin.request(
        "POST",
        "/api/replay",
        data=orjson.dumps({"store": "shop"}),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 200, text


async def test_sign_out_ends_the_session(admin: Admin) -> None:
    """After signing out (a CSRF-checked form), the old session cookie opens nothing."""
    await admin.sign_in()
    csrf = await admin.csrf()
    session = admin.cookies["tagless_session"]
    status, headers, _ = await admin.request("POST", "/logout", data={"csrf_token": csrf})
    assert status == 303
    assert headers["Location"] == "/login"
    admin.cookies["tagless_session"] = session
    status, _, _ = await admin.request("GET", "/api/dead-letters")
    assert status == 401


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/events?q=o-1", "/events?q=o-1"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("", "/"),
    ],
)
def test_sign_in_only_returns_to_a_path_of_this_listener(target: str, expected: str) -> None:
    """The ``next`` of the login form never leads to another site."""
    assert local_target(target) == expected


async def test_an_address_that_guesses_wrong_too_often_waits_out_the_window(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten wrong tokens (bearer or login form) within the window: the address gets 429 with
    Retry-After on its next tries, the right token included, until the window has passed;
    then the right token works again and forgives the failures."""
    monkeypatch.setattr(throttle, "WINDOW_SECS", 1.0)
    wrong = {"Authorization": "Bearer wrong-token"}
    right = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(throttle.MAX_FAILURES - 1):
        status, _, _ = await admin.request("GET", "/api/status", headers=wrong)
        assert status == 401
    status, _ = await admin.sign_in("wrong-token")  # the tenth, in the login form
    assert status == 401
    status, headers, body = await admin.request("GET", "/api/status", headers=right)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert "too many wrong admin tokens" in orjson.loads(body)["error"]
    status, headers = await admin.sign_in()
    assert status == 429 and "tagless_session" not in admin.cookies
    await asyncio.sleep(1.1)
    status, _, _ = await admin.request("GET", "/api/status", headers=right)
    assert status == 200
    status, _, _ = await admin.request("GET", "/api/status", headers=wrong)
    assert status == 401  # forgiven: counting starts again


def test_the_failures_of_many_addresses_stay_bounded() -> None:
    """A flood of guesses from ever new addresses keeps at most MAX_ADDRESSES of them."""
    failures = throttle.FailedSignIns()
    for n in range(throttle.MAX_ADDRESSES + 50):
        failures.failed(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(failures._failures) == throttle.MAX_ADDRESSES
    assert failures.wait_secs("10.0.0.0", 0.0) == 0.0  # the oldest, forgotten
