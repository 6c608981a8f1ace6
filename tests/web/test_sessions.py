"""Browser sessions end when they expire, when the admin token changes, and past the bound."""

from __future__ import annotations

import pytest

from router.secret import Secret
from router.web import sessions
from router.web.sessions import SESSION_SECS, Sessions

TOKEN = Secret("admin-token")


def test_a_session_lasts_until_it_expires() -> None:
    """Found with the same token before its end, gone at its end."""
    store = Sessions()
    session_id, session = store.create(TOKEN, now=1000.0)
    assert store.find(session_id, TOKEN, now=1000.0 + SESSION_SECS - 1) == session
    assert store.find(session_id, TOKEN, now=1000.0 + SESSION_SECS) is None
    assert store.find(session_id, TOKEN, now=1000.0) is None  # removed, not only refused


def test_a_new_admin_token_ends_every_session() -> None:
    """A reloaded config with another token logs every browser out, even if it changes back."""
    store = Sessions()
    session_id, _ = store.create(TOKEN, now=0.0)
    assert store.find(session_id, Secret("rotated-token"), now=1.0) is None
    assert store.find(session_id, TOKEN, now=1.0) is None


def test_an_unset_token_opens_no_session() -> None:
    """A token whose variable was never set matches no session (not even one made with it)."""
    unset = Secret.unset("TAGLESS_ADMIN_TOKEN")
    store = Sessions()
    session_id, _ = store.create(unset, now=0.0)
    assert store.find(session_id, unset, now=1.0) is None


def test_unknown_or_ended_sessions_are_not_found() -> None:
    store = Sessions()
    session_id, _ = store.create(TOKEN, now=0.0)
    assert store.find("made-up", TOKEN, now=1.0) is None
    assert store.find(None, TOKEN, now=1.0) is None
    store.end(session_id)
    assert store.find(session_id, TOKEN, now=1.0) is None


def test_the_oldest_session_makes_room_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays bounded: the oldest login ends when the bound is reached."""
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    store = Sessions()
    ids = [store.create(TOKEN, now=float(n))[0] for n in range(4)]
    assert store.find(ids[0], TOKEN, now=5.0) is None
    assert all(store.find(i, TOKEN, now=5.0) is not None for i in ids[1:])
