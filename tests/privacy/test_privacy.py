"""Normalisation and hashing per platform profile match the documented golden vectors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from router import privacy

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors.json").read_text())
CASES = [
    (field, case, profile)
    for field, cases in VECTORS.items()
    if not field.startswith("_")
    for case in cases
    for profile in ("meta", "google", "spotify")
]


@pytest.mark.parametrize(("field", "case", "profile"), CASES)
def test_normalisation_and_hash_per_profile(field: str, case: dict[str, Any], profile: str) -> None:
    """Each input normalises to the documented form for the profile and hashes to its SHA-256."""
    normalise = getattr(privacy, f"normalize_{field}")
    hasher = getattr(privacy, f"hash_{field}")
    expected = case[profile]
    assert normalise(case["input"], profile) == expected
    digest = hashlib.sha256(expected.encode()).hexdigest() if expected is not None else None
    assert hasher(case["input"], profile) == digest


def test_the_documented_email_hash() -> None:
    """Trimmed and lowercased, "  Person@Example.com " hashes as person@example.com: 542d2401..."""
    assert privacy.hash_email("  Person@Example.com ", "meta").startswith("542d2401")


def test_pre_hashed_values_pass_through_lowercased() -> None:
    """A 64-hex value was hashed by the sender: it is never hashed twice."""
    digest = hashlib.sha256(b"person@example.com").hexdigest()
    for profile in ("meta", "google", "spotify"):
        assert privacy.hash_email(digest.upper(), profile) == digest  # type: ignore[arg-type]
        assert privacy.hash_phone(f" {digest} ", profile) == digest  # type: ignore[arg-type]


def test_hash_all_drops_empty_and_repeats() -> None:
    """Several values hash in order, without values that normalise to nothing, no repeats."""
    values = ("a@example.com", "A@Example.com ", "nope", "b@example.com")
    hashed = privacy.hash_all(values, privacy.hash_email, "meta")
    assert hashed == [
        hashlib.sha256(b"a@example.com").hexdigest(),
        hashlib.sha256(b"b@example.com").hexdigest(),
    ]


def test_scrub_masks_echoed_identity_and_keeps_the_message() -> None:
    """Emails, IPv4/IPv6 addresses and hashes are masked; codes and wording remain."""
    digest = hashlib.sha256(b"x").hexdigest()
    text = (
        '{"error":{"code":100,"message":"Invalid email Jane.Doe+1@example.co.uk from '
        f'81.2.69.142 / 2001:db8::1, em={digest}","fbtrace_id":"AbC123"}}}}'
    )
    scrubbed = privacy.scrub(text)
    for secret in ("Jane.Doe+1@example.co.uk", "81.2.69.142", "2001:db8::1", digest):
        assert secret not in scrubbed
    assert '"code":100' in scrubbed and "Invalid email <email> from <ip> / <ip>" in scrubbed
    assert "em=<sha256>" in scrubbed and "AbC123" in scrubbed
    assert privacy.scrub("at 2026-11-20T14:30:05Z") == "at 2026-11-20T14:30:05Z"


def test_scrub_masks_the_events_own_values_as_whole_words_only() -> None:
    """Known values go in any case and as whole words; coarse fields (gender, country) and
    words merely containing a value stay."""
    stored = {
        "last_name": "Doe",
        "phones": ["+1 (555) 010-9999"],
        "gender": "female",
        "country": "US",
        "other_ids": {"ttclid": "tt-123"},
    }
    known = privacy.identity_values(stored)
    assert known == {"Doe", "+1 (555) 010-9999", "15550109999", "tt-123"}
    text = "DOE doesn't match 15550109999; female in US; click tt-123."
    assert privacy.scrub(text, known) == (
        "<user_data> doesn't match <user_data>; female in US; click <user_data>."
    )


def test_the_hash_memo_keeps_profiles_apart() -> None:
    """A memoised hash is the one of its own profile and normaliser: the same phone hashed for
    Meta (digits) then Google (E.164) then Meta again gives the two different hashes."""
    privacy.clear_hash_memo()
    phone = "+44 20 7946 0958"
    meta = privacy.hash_phone(phone, "meta")
    google = privacy.hash_phone(phone, "google")
    assert meta == hashlib.sha256(b"442079460958").hexdigest()
    assert google == hashlib.sha256(b"+442079460958").hexdigest()
    assert privacy.hash_phone(phone, "meta") == meta
    assert (
        privacy.hash_with(privacy.normalize_external_id, phone, "meta")
        == hashlib.sha256(phone.encode()).hexdigest()
    )
    assert privacy.hash_memo_size() == 3


def test_the_hash_memo_is_bounded() -> None:
    """More distinct values than HASH_MEMO_SIZE leave it at HASH_MEMO_SIZE (oldest dropped),
    and a dropped value hashes the same when it comes back."""
    privacy.clear_hash_memo()
    first = privacy.hash_email("first@example.com", "meta")
    for n in range(privacy.HASH_MEMO_SIZE + 10):
        privacy.hash_email(f"user{n}@example.com", "meta")
    assert privacy.hash_memo_size() == privacy.HASH_MEMO_SIZE
    assert privacy.hash_email("first@example.com", "meta") == first
    privacy.clear_hash_memo()
    assert privacy.hash_memo_size() == 0
