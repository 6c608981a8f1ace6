"""Write keys to stores: Basic-auth username or ``writeKey``, compared without timing leaks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from router.identity.client_ip import KeyKind


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """Finds the one store a write key belongs to, and the key's kind (server or browser).

    The candidate's SHA-256 digest is compared with every known key's digest using
    ``hmac.compare_digest`` and no early exit, so the time taken says nothing about how close a
    guess was or which store it hit. The store always comes from the key, never the payload.
    """

    def __init__(self, keys: Iterable[tuple[str, str, KeyKind]]) -> None:
        self._digests: tuple[tuple[bytes, str, KeyKind], ...] = tuple(
            (_digest(k), s, kind) for k, s, kind in keys
        )

    def find(self, key: str | None) -> tuple[str, KeyKind] | None:
        """The store of ``key`` and the key's kind, or ``None`` for a missing or unknown key."""
        candidate = _digest(key or "")
        found = None
        for digest, store, kind in self._digests:
            if hmac.compare_digest(digest, candidate) and key:
                found = (store, kind)
        return found

    def store_for(self, key: str | None) -> str | None:
        """The store of ``key``, or ``None`` for a missing or unknown key."""
        found = self.find(key)
        return None if found is None else found[0]


def basic_username(headers: Mapping[str, str]) -> str | None:
    """The username of a Basic ``Authorization`` header (the Segment write-key convention)."""
    value = headers.get("Authorization")
    if not value or value[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None
