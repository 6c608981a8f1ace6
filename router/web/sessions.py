"""Admin browser sessions: the login cookie's random id, its CSRF token, expiry and bound."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from typing import Final

import attrs
from aiohttp import web

from router.secret import MissingSecret, Secret

#: The session cookie (HttpOnly, SameSite=Strict) and the login form's double-submit cookie.
SESSION_COOKIE: Final = "tagless_session"
LOGIN_COOKIE: Final = "tagless_login"
#: The signed-in session's CSRF token, for the page's forms (absent with a bearer token).
CSRF_KEY: Final = web.RequestKey("csrf", str)
#: A session lasts this long from login, however busy.
SESSION_SECS: Final = 12 * 3600.0
#: Sessions kept at most (a new login past it ends the oldest): memory stays bounded.
MAX_SESSIONS: Final = 1_000


def fingerprint(token: Secret) -> bytes:
    """A digest of the admin token: a session remembers it, never the token itself, and ends
    when a reloaded config changes the token."""
    try:
        value = token.reveal()
    except MissingSecret:
        return b""
    return hashlib.sha256(b"tagless-admin-session\0" + value.encode()).digest()


@attrs.frozen(slots=True)
class Session:
    """One logged-in browser: its CSRF token, the token it logged in with, its end."""

    csrf: str
    token_digest: bytes
    expires_at: float


class Sessions:
    """Logged-in browsers by session id, in memory (a restart logs everyone out)."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, token: Secret, now: float) -> tuple[str, Session]:
        """A new session for a browser that has just shown ``token``: its id and record."""
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), fingerprint(token), now + SESSION_SECS)
        self._sessions[session_id] = session
        return session_id, session

    def find(self, session_id: str | None, token: Secret, now: float) -> Session | None:
        """The live session of this id, or None (unknown, expired, or the token changed)."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        current = fingerprint(token)
        if session.expires_at <= now or not (
            current and hmac.compare_digest(session.token_digest, current)
        ):
            del self._sessions[session_id]
            return None
        return session

    def end(self, session_id: str | None) -> None:
        """Log a browser out (an unknown id is ignored)."""
        if session_id:
            self._sessions.pop(session_id, None)


def same_token(expected: str, given: str | None) -> bool:
    """Whether a CSRF token sent back matches, compared in constant time."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
