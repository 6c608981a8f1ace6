"""What the admin pages show of an event: personal data masked wherever it appears, hashes
shortened, the rest as stored."""

from __future__ import annotations

import orjson

from router import codec
from router.ops.masking import mask_event, mask_ip, mask_payload, personal_values
from router.privacy import sha256_hex
from router.testing.events import make_event


def test_an_event_shows_no_personal_value_and_keeps_the_rest() -> None:
    """Emails and phones become shortened hashes, names and street are masked, the IP keeps
    its network part; a name echoed in a property is masked there too; order and ids stay."""
    stored = orjson.loads(codec.encode(make_event(properties={"note": "gift from Jane Doe"})))
    shown = mask_event(stored)
    text = orjson.dumps(shown).decode()
    for raw in ("jane.doe@example.com", "+44 20 7946 0958", "Jane", "Doe", "81.2.69.142"):
        assert raw not in text
    assert shown["emails"] == ["sha256:" + sha256_hex("jane.doe@example.com")[:6] + "…"]
    assert shown["client_ip"] == "81.2.x.x"
    assert shown["first_name"] == shown["last_name"] == "•••"
    assert shown["properties"]["note"] == "gift from <user_data> <user_data>"
    assert (shown["order_id"], shown["user_id"]) == ("WC-1001", "customer-42")


def test_a_payload_shows_hashes_shortened_and_addresses_masked() -> None:
    """Hex digests are cut to six characters, an IP (v4 or v6) keeps its network part, an
    email or a known personal value anywhere in the text is masked."""
    known = personal_values({"first_name": "Jane", "emails": ["jane@example.com"]})
    payload = {
        "em": ["a" * 64],
        "ip": "2a02:1810:4d02:8f00::1",
        "note": "Jane wrote from jane@example.com",
        "n": 3,
    }
    assert mask_payload(payload, known) == {
        "em": ["aaaaaa…"],
        "ip": "2a02:1810:…",
        "note": "<user_data> wrote from <email>",
        "n": 3,
    }
    assert mask_ip("not an ip") == "<ip>"
