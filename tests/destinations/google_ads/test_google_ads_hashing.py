"""Google's normalisation and SHA-256 hex, checked against Google's own published vectors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from destinations.google_ads import identity
from router import privacy

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "hash_vectors.json").read_text())

Normaliser = Callable[[str], "str | None"]
Hasher = Callable[[str], "str | None"]
FIELDS: dict[str, tuple[Normaliser, Hasher]] = {
    "email": (identity.normalize_email, identity.hash_email),
    "phone": (
        lambda v: privacy.normalize_phone(v, "google"),
        lambda v: privacy.hash_phone(v, "google"),
    ),
    "given_name": (
        lambda v: privacy.normalize_name(v, "google"),
        lambda v: privacy.hash_name(v, "google"),
    ),
    "family_name": (
        lambda v: privacy.normalize_name(v, "google"),
        lambda v: privacy.hash_name(v, "google"),
    ),
}
CASES = [(field, case) for field in FIELDS for case in VECTORS[field]]


@pytest.mark.parametrize(("field", "case"), CASES, ids=[f"{f}:{c['input']!r}" for f, c in CASES])
def test_normal_form_and_hash_match_the_vector(field: str, case: dict[str, Any]) -> None:
    """Each input normalises to the documented form and hashes to its lowercase SHA-256 hex."""
    normalise, hasher = FIELDS[field]
    assert normalise(case["input"]) == case["normal"]
    expected = (
        None if case["normal"] is None else hashlib.sha256(case["normal"].encode()).hexdigest()
    )
    if "sha256" in case:
        assert expected == case["sha256"]  # Google's published value, not only our arithmetic
    assert hasher(case["input"]) == expected


def test_google_published_vectors_are_covered() -> None:
    """Google's own vectors (email, phone, names, with hashes) stay in the vector file."""
    published = [c for f in FIELDS for c in VECTORS[f] if c.get("google") and "sha256" in c]
    assert {c["sha256"][:8] for c in published} == {"509e9330", "fb4f73a6", "128a07bf", "77762c28"}


def test_already_hashed_email_passes_through_lowercased() -> None:
    """A sender's own SHA-256 is not hashed again."""
    digest = hashlib.sha256(b"alexz@example.com").hexdigest()
    assert identity.hash_email(f" {digest.upper()} ") == digest
