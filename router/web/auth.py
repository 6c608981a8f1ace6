"""Who may use the admin listener: a bearer token, or a browser session with CSRF on writes.

Every path but health, metrics, the login page and the static assets needs either
``Authorization: Bearer <admin token>`` or the session cookie the login page sets in exchange
for the token. A request with a session cookie that changes anything (any method but GET,
HEAD, OPTIONS) must also send the session's CSRF token, as the form field ``csrf_token`` or
the ``X-CSRF-Token`` header; a bearer request needs none (a browser never adds that header
by itself). An ingest write key is no admin token and opens nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from router.web.render import page
from router.web.sessions import (
    CSRF_KEY,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECS,
    Sessions,
    same_token,
)
from router.web.throttle import WINDOW_SECS, FailedSignIns, retry_after

if TYPE_CHECKING:
    from router.app import Tagless

log = structlog.get_logger("tagless.admin")

#: No token: health for orchestrators, metrics for Prometheus (counts and store names only;
#: the admin listener is bound to 127.0.0.1 by default).
OPEN_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
#: Open so that a browser can sign in: the login form and the styles and script it loads.
SIGN_IN_PATHS: Final = frozenset({"/login"})
STATIC_PREFIX: Final = "/static/"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_open(path: str) -> bool:
    """Whether ``path`` is served without a token or session."""
    return path in OPEN_PATHS or path in SIGN_IN_PATHS or path.startswith(STATIC_PREFIX)


def bearer(request: web.Request) -> str | None:
    """The bearer token of the request, or None without an ``Authorization: Bearer`` header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def wants_html(request: web.Request) -> bool:
    """A browser asking for a page (not the JSON API): it gets the login form, not JSON."""
    return not request.path.startswith("/api/") and "text/html" in request.headers.get("Accept", "")


def local_target(target: str | None) -> str:
    """Where to go after signing in: a path on this listener only (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c == "\\" for c in target):  # browsers drop tabs: "/\t/evil"
        return "/"
    return target


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: float
) -> None:
    """A cookie for this listener only: HttpOnly, SameSite=Strict; Secure when over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=int(max_age),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


class AdminAuth:
    """The admin listener's gate (:meth:`middleware`) and its login and logout pages."""

    def __init__(self, tagless: Tagless) -> None:
        self.tagless = tagless
        self.sessions = Sessions()
        self.failures = FailedSignIns()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Let the request through, or answer 401 (no or wrong credentials) or 403 (CSRF)."""
        if is_open(request.path):
            return await handler(request)
        token = self.tagless.config.admin.token
        given = bearer(request)
        now = self.tagless.clock.now()
        if given is not None:
            address = request.remote or ""
            wait = self.failures.wait_secs(address, now)
            if wait > 0:
                return self._throttled(request, wait)
            if token.matches(given):
                self.failures.succeeded(address)
                return await handler(request)
            self.failures.failed(address, now)
            log.warning("admin_token_refused", path=request.path)
            return self._refused(request, "the bearer token is not the admin token")
        session = self.sessions.find(request.cookies.get(SESSION_COOKIE), token, now)
        if session is None:
            return self._refused(request, "an admin token is required")
        if request.method not in SAFE_METHODS:
            problem = await self._csrf_problem(request, session.csrf)
            if problem is not None:
                log.warning("admin_csrf_refused", path=request.path, problem=problem)
                return web.json_response({"error": problem}, status=403)
        request[CSRF_KEY] = session.csrf
        return await handler(request)

    async def _csrf_problem(self, request: web.Request, expected: str) -> str | None:
        """Why a cookie-authenticated write is refused, or None when its CSRF token matches."""
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return "the request comes from another site"
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            field = (await request.post()).get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
        if not same_token(expected, sent):
            return f"a valid CSRF token is required (form field {CSRF_FIELD} or {CSRF_HEADER})"
        return None

    def _throttled(self, request: web.Request, wait: float) -> web.Response:
        """429: this address guessed wrong too often (router/web/throttle.py)."""
        log.warning("admin_sign_in_throttled", path=request.path, wait_secs=round(wait, 1))
        return web.json_response(
            {
                "error": f"too many wrong admin tokens from this address within"
                f" {WINDOW_SECS:.0f} s; try again in {retry_after(wait)} s",
            },
            status=429,
            headers={"Retry-After": retry_after(wait)},
        )

    def _refused(self, request: web.Request, why: str) -> web.Response:
        if wants_html(request):
            return self.login_form(request, status=401, target=request.path_qs)
        return web.json_response(
            {
                "error": why,
                "hint": "send Authorization: Bearer <admin token>, or sign in at /login",
            },
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="tagless-admin"'},
        )

    def login_form(
        self, request: web.Request, *, status: int = 200, target: str = "/", error: str = ""
    ) -> web.Response:
        """The sign-in page, with a fresh double-submit CSRF token in a cookie and the form."""
        nonce = secrets.token_urlsafe(32)
        response = page(
            request,
            "login.html",
            status=status,
            nonce=nonce,
            target=local_target(target),
            error=error,
        )
        set_cookie(response, request, LOGIN_COOKIE, nonce, 3600)
        return response

    async def login_page(self, request: web.Request) -> web.Response:
        return self.login_form(request, target=request.query.get("next", "/"))

    async def login(self, request: web.Request) -> web.Response:
        """Exchange the admin token (form field ``token``) for a session cookie."""
        form = await request.post()
        target = local_target(str(form.get("next", "/")))
        nonce = form.get(CSRF_FIELD)
        if not same_token(request.cookies.get(LOGIN_COOKIE, ""), str(nonce or "")):
            log.warning("admin_csrf_refused", path=request.path, problem="login form")
            return self.login_form(
                request,
                status=403,
                target=target,
                error="The form expired or came from another site; sign in again.",
            )
        token = self.tagless.config.admin.token
        address, now = request.remote or "", self.tagless.clock.now()
        wait = self.failures.wait_secs(address, now)
        if wait > 0:
            log.warning("admin_sign_in_throttled", path=request.path, wait_secs=round(wait, 1))
            answer = self.login_form(
                request,
                status=429,
                target=target,
                error=f"Too many wrong tokens from this address; try again in"
                f" {retry_after(wait)} s.",
            )
            answer.headers["Retry-After"] = retry_after(wait)
            return answer
        if not token.matches(str(form.get("token", ""))):
            self.failures.failed(address, now)
            log.warning("admin_login_failed")
            return self.login_form(
                request, status=401, target=target, error="That is not the admin token."
            )
        self.failures.succeeded(address)
        session_id, _ = self.sessions.create(token, self.tagless.clock.now())
        log.info("admin_login")
        response = web.HTTPSeeOther(target)
        set_cookie(response, request, SESSION_COOKIE, session_id, SESSION_SECS)
        response.del_cookie(LOGIN_COOKIE, path="/")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        """End the browser's session (the middleware checked its CSRF token)."""
        self.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
