"""Identity normalisation and SHA-256 per platform family (Meta, Google, Spotify).

Each platform matches on SHA-256 hex of a *normalised* value, and the normalisations differ
(each destination's README links the platform's rules): a hash of the wrong form is
accepted and never matches, silently. So each ``hash_*`` function takes the profile of the
platform family it is for. A value that already is 64 hex characters was hashed by the sender
and passes through (lowercased), never hashed twice. Nothing here logs or raises on content.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from router.event import Event

Profile = Literal["meta", "google", "spotify"]

_HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")
_PHONE_PUNCTUATION: Final = re.compile(r"[\s\-().]")
_NOT_DIGIT: Final = re.compile(r"\D")
_ZIP_PLUS_4: Final = re.compile(r"\d{5}-\d{4}")
_GMAIL: Final = ("gmail.com", "googlemail.com")


def is_hashed(value: str) -> bool:
    """Whether ``value`` is already a SHA-256 hex digest (64 hex characters)."""
    return len(value) == 64 and _HEX64.fullmatch(value) is not None


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 text, lowercase hex."""
    return hashlib.sha256(text.encode()).hexdigest()


# -- normalisation, one function per field ------------------------------------------------------


def normalize_email(value: str, profile: Profile) -> str | None:
    """Trim and lowercase; Google also drops dots before ``@`` at gmail.com / googlemail.com."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain:
        return None
    if profile == "google" and domain in _GMAIL:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def normalize_phone(value: str, profile: Profile) -> str | None:
    """Meta: digits only with the country code, no ``+`` or ``00``. Google: E.164 with ``+``.

    Spotify documents only "trim, lowercase"; integrators strip spaces, dashes and brackets,
    which is what the ``spotify`` profile does (Spotify documents nothing more publicly).
    """
    text = value.strip().lower()
    if profile == "spotify":
        stripped = _PHONE_PUNCTUATION.sub("", text)
        return stripped or None
    digits = _NOT_DIGIT.sub("", text)
    if digits.startswith("00"):  # the 00 international prefix is the + of E.164
        digits = digits[2:]
    if not digits:
        return None
    return f"+{digits}" if profile == "google" else digits


def normalize_name(value: str, profile: Profile) -> str | None:
    """Lowercase and trim; Google (and Meta's guidance) also drop digits and punctuation."""
    text = unicodedata.normalize("NFC", value).strip().lower()
    if profile in ("google", "meta"):
        text = "".join(ch for ch in text if ch.isalpha() or ch == " ")
        text = " ".join(text.split())
    return text or None


def normalize_city(value: str, profile: Profile) -> str | None:
    """Meta: lowercase letters only (``Menlo Park`` → ``menlopark``); others: trim, lowercase."""
    text = unicodedata.normalize("NFC", value).strip().lower()
    if profile == "meta":
        text = "".join(ch for ch in text if ch.isalpha())
    return text or None


def normalize_region(value: str, profile: Profile) -> str | None:
    """Lowercase letters only: a two-letter code such as ``ca`` for the US."""
    text = "".join(ch for ch in value.strip().lower() if ch.isalpha())
    return text or None


def normalize_postal_code(value: str, profile: Profile) -> str | None:
    """Lowercase without spaces; a US ZIP+4 keeps its five digits (``94025-1234`` → ``94025``)."""
    text = value.strip().lower().replace(" ", "")
    if _ZIP_PLUS_4.fullmatch(text):
        text = text[:5]
    return text or None


def normalize_country(value: str, profile: Profile) -> str | None:
    """ISO 3166-1 alpha-2, lowercase letters only."""
    text = "".join(ch for ch in value.strip().lower() if ch.isalpha())
    return text if len(text) == 2 else None


def normalize_gender(value: str, profile: Profile) -> str | None:
    """``f`` or ``m`` from female/male/f/m (any case); anything else is not sent."""
    text = value.strip().lower()
    return {"f": "f", "female": "f", "m": "m", "male": "m"}.get(text)


def normalize_date_of_birth(value: str, profile: Profile) -> str | None:
    """``YYYYMMDD`` from an ISO date (``1990-04-30``)."""
    digits = _NOT_DIGIT.sub("", value.strip())
    return digits if len(digits) == 8 else None


def normalize_external_id(value: str, profile: Profile) -> str | None:
    """Trimmed, case kept: the same form the Pixel hashes."""
    return value.strip() or None


# -- hashing ------------------------------------------------------------------------------------

Normaliser = Callable[[str, Profile], "str | None"]

#: How many (normaliser, raw value, profile) → hash results :func:`hash_with` keeps, least
#: recently used dropped first. Every destination hashes every event's email and phone, and a
#: customer's events come close together, so most of them are hashed once rather than once per
#: destination and event; a hit costs about a quarter of a normalise + SHA-256. The raw values
#: are in process memory anyway (the events hold them); the memo is never logged or listed.
HASH_MEMO_SIZE: Final = 16_384


def hash_with(normalise: Normaliser, value: str | None, profile: Profile) -> str | None:
    """Normalise then SHA-256; a value already hashed passes through lowercased.

    Memoised (HASH_MEMO_SIZE results), so ``normalise`` must depend on its arguments only, as
    every normaliser here does.
    """
    return None if value is None else _hashed(normalise, value, profile)


@functools.lru_cache(maxsize=HASH_MEMO_SIZE)
def _hashed(normalise: Normaliser, value: str, profile: Profile) -> str | None:
    text = value.strip()
    if is_hashed(text):
        return text.lower()
    normal = normalise(value, profile)
    return None if normal is None else sha256_hex(normal)


def clear_hash_memo() -> None:
    """Forget every memoised hash (tests and benchmarks start from an empty memo)."""
    _hashed.cache_clear()


def hash_memo_size() -> int:
    """How many results the hash memo holds now (at most HASH_MEMO_SIZE)."""
    return _hashed.cache_info().currsize


def hash_email(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_email, value, profile)


def hash_phone(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_phone, value, profile)


def hash_name(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_name, value, profile)


def hash_city(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_city, value, profile)


def hash_region(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_region, value, profile)


def hash_postal_code(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_postal_code, value, profile)


def hash_country(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_country, value, profile)


def hash_gender(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_gender, value, profile)


def hash_date_of_birth(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_date_of_birth, value, profile)


def hash_external_id(value: str | None, profile: Profile) -> str | None:
    return None if value is None else _hashed(normalize_external_id, value, profile)


def hash_all(
    values: tuple[str, ...], hasher: Callable[[str | None, Profile], str | None], profile: Profile
) -> list[str]:
    """Hash each value, dropping the ones that normalise to nothing, keeping order, no repeats."""
    if len(values) == 1:  # the usual case: one email, one phone
        hashed = hasher(values[0], profile)
        return [] if hashed is None else [hashed]
    out: dict[str, None] = {}
    for value in values:
        hashed = hasher(value, profile)
        if hashed is not None:
            out[hashed] = None
    return list(out)


#: Fields that identify a person or a device: dropped when consent says "without user data".
USER_DATA_FIELDS: Final = (
    "client_ip",
    "user_agent",
    "user_id",
    "anonymous_id",
    "previous_id",
    "traits",
    "emails",
    "phones",
    "first_name",
    "last_name",
    "date_of_birth",
    "gender",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
    "fbc",
    "fbp",
    "gclid",
    "gbraid",
    "wbraid",
    "ga_client_id",
    "ga_session_id",
    "spotify_device_id",
    "other_ids",
)


def without_user_data(event: Event) -> Event:
    """The event with every identifying field emptied; the conversion itself stays."""
    empty: dict[str, Any] = {name: _empty_value(name) for name in USER_DATA_FIELDS}
    return attrs.evolve(event, client_ip_origin="missing", client_ip_class="missing", **empty)


def _empty_value(name: str) -> Any:
    default: Any = attrs.fields_dict(Event)[name].default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]  # attrs.Factory is a class at run time


_EMAIL_IN_TEXT: Final = re.compile(r"[^\s@\"'<>,;:()\[\]{}]+@[^\s@\"'<>,;:()\[\]{}]+\.[A-Za-z]{2,}")
_IPV4_IN_TEXT: Final = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6_CANDIDATE: Final = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}")
_HEX64_IN_TEXT: Final = re.compile(r"\b[0-9a-fA-F]{64}\b")


#: Fields too coarse to mask in free text ("male", "DE", "CA" are ordinary words there).
_NOT_MASKED: Final = frozenset({"gender", "country", "region"})
_MIN_KNOWN: Final = 3


def identity_values(stored: Mapping[str, Any]) -> set[str]:
    """An event's own identity values (stored form) as text, for :func:`scrub`; a phone
    also as its digits alone, the way platforms tend to echo it."""
    found: set[str] = set()
    for name in USER_DATA_FIELDS:
        value = stored.get(name)
        if value is None or name in _NOT_MASKED:
            continue
        values = value.values() if isinstance(value, dict) else value
        for v in [values] if isinstance(values, str) else values:
            if isinstance(v, str) and len(v := v.strip()) >= _MIN_KNOWN:
                found.add(v)
                digits = "".join(c for c in v if c.isdigit())
                if name == "phones" and len(digits) >= _MIN_KNOWN:
                    found.add(digits)
    return found


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """Mask what a platform may echo back of our input: emails, IP addresses and hashes,
    then any of ``known`` (the event's own names, phones, ids) as a whole word, any case.

    Applied to every platform answer kept in a dead letter, which the admin API and
    ``tagless dead-letters`` show; codes, field names and messages stay readable.
    """
    text = _EMAIL_IN_TEXT.sub("<email>", text)
    text = _HEX64_IN_TEXT.sub("<sha256>", text)
    text = _IPV6_CANDIDATE.sub(_ipv6_masked, text)
    text = _IPV4_IN_TEXT.sub("<ip>", text)
    for value in sorted(known, key=len, reverse=True):  # longest first: a phone before its digits
        word = rf"(?<!\w){re.escape(value)}(?!\w)"
        text = re.sub(word, "<user_data>", text, flags=re.IGNORECASE)
    return text


def _ipv6_masked(match: re.Match[str]) -> str:
    """Mask a candidate only if it is an IPv6 address (``14:30:05`` is not)."""
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)
    return "<ip>"
