"""What the admin pages may show of an event: canonical events and mapped payloads with emails,
phones, IP addresses and names masked, and hashes shortened."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Final

import orjson

from router import codec
from router.privacy import hash_email, hash_phone, identity_values, is_hashed, scrub

#: Hex digits a shortened hash keeps: enough to compare an event with its payload by eye.
SHORT_HASH: Final = 6
MASKED: Final = "•••"
#: Canonical fields that are personal data: never shown raw, and masked wherever they recur.
PERSONAL_FIELDS: Final = (
    "client_ip",
    "emails",
    "phones",
    "first_name",
    "last_name",
    "date_of_birth",
    "street",
    "city",
    "postal_code",
    "traits",
)
_HIDDEN: Final = frozenset({"first_name", "last_name", "date_of_birth", "street", "postal_code"})


def short_hash(value: str) -> str:
    """A SHA-256 hex digest shortened for display: ``a1b2c3…``."""
    return value.lower()[:SHORT_HASH] + "…"


def mask_ip(text: str) -> str:
    """An IP address with its host part hidden: ``81.2.x.x``, ``2001:db8:…``."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return "<ip>"
    if address.version == 4:
        return ".".join(text.strip().split(".")[:2]) + ".x.x"
    return ":".join(address.exploded.split(":")[:2]) + ":…"


def personal_values(stored: Mapping[str, Any]) -> set[str]:
    """The event's personal values as text, to be masked wherever they recur."""
    return identity_values({name: stored[name] for name in PERSONAL_FIELDS if name in stored})


def mask_event(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical event (stored form) fit to show: emails and phones as shortened hashes,
    the IP's host part and names hidden, personal values masked wherever else they appear."""
    known = personal_values(stored)
    out: dict[str, Any] = {}
    for name, value in stored.items():
        if value is None:
            out[name] = None
        elif name == "client_ip":
            out[name] = mask_ip(str(value))
        elif name == "emails":
            out[name] = [_hashed(hash_email(str(v), "meta")) for v in value]
        elif name == "phones":
            out[name] = [_hashed(hash_phone(str(v), "meta")) for v in value]
        elif name in _HIDDEN:
            out[name] = MASKED
        else:
            out[name] = _masked(value, known)
    return out


def mask_payload(payload: Any, known: set[str]) -> Any:
    """A mapped payload fit to show: hashes shortened, IP addresses' host parts hidden, the
    event's personal values and any email masked."""
    data = orjson.loads(codec.dumps(payload))  # JSON-ready whatever the plugin built
    return _masked(data, known)


def _hashed(value: str | None) -> str:
    return MASKED if value is None else "sha256:" + short_hash(value)


def _masked(value: Any, known: set[str]) -> Any:
    if isinstance(value, str):
        return _masked_text(value, known)
    if isinstance(value, Mapping):
        return {key: _masked(item, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, known) for item in value]
    return value


def _masked_text(text: str, known: set[str]) -> str:
    if is_hashed(text):
        return short_hash(text)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return scrub(text, known)
    return mask_ip(text)
