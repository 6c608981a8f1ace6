"""Identity stitching's state: what fills a later event, within the window, with its consent."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from router.event import Consent
from router.identity.stitching import Stitcher

T0 = 1_800_000_000.0
HOUR = 3600.0


def page_view(event_id: str = "pv-1", **fields: Any) -> dict[str, Any]:
    """A browser page view's fields: a public IP, a user agent and Meta's browser id."""
    return {
        "event_id": event_id,
        "anonymous_id": "anon-1",
        "client_ip": "81.2.69.142",
        "client_ip_origin": "header",
        "client_ip_class": "public",
        "user_agent": "Mozilla/5.0",
        "fbp": "fb.1.17.12",
        "emails": ("Jane@Example.com ",),
        **fields,
    }


def callback(event_id: str = "buy-1", **fields: Any) -> dict[str, Any]:
    """A payment gateway's server callback: no customer IP (the peer is the store's server)."""
    return {
        "event_id": event_id,
        "anonymous_id": "anon-1",
        "client_ip": None,
        "client_ip_origin": "peer",
        "client_ip_class": "own_server",
        **fields,
    }


@pytest.fixture
def stitcher() -> Stitcher:
    return Stitcher("shop", window_secs=24 * HOUR)


def test_a_later_event_of_the_same_person_gets_what_it_lacks(stitcher: Stitcher) -> None:
    """The callback gets the page view's IP (origin stitched), user agent, fbp and the
    hashed email, and names the page view as their source."""
    stitcher.apply(page_view(), T0)
    buy = callback()
    _, filled = stitcher.apply(buy, T0 + HOUR)
    assert filled
    assert (buy["client_ip"], buy["client_ip_origin"], buy["client_ip_class"]) == (
        "81.2.69.142",
        "stitched",
        "public",
    )
    assert (buy["user_agent"], buy["fbp"], buy["stitched_from"]) == (
        "Mozilla/5.0",
        "fb.1.17.12",
        "pv-1",
    )
    assert buy["emails"] == (hashlib.sha256(b"jane@example.com").hexdigest(),)


def test_what_the_event_carries_itself_wins(stitcher: Stitcher) -> None:
    """A field the event has is never replaced, nor is a public IP of its own."""
    stitcher.apply(page_view(), T0)
    buy = callback(client_ip="8.8.8.8", client_ip_class="public", client_ip_origin="payload")
    buy["fbp"] = "fb.1.99.99"
    stitcher.apply(buy, T0 + 1)
    assert (buy["client_ip"], buy["client_ip_origin"], buy["fbp"]) == (
        "8.8.8.8",
        "payload",
        "fb.1.99.99",
    )
    assert buy["user_agent"] == "Mozilla/5.0"


def test_nothing_older_than_the_window_fills(stitcher: Stitcher) -> None:
    """What was seen more than window_hours before the event does not fill it."""
    stitcher.apply(page_view(), T0)
    buy = callback()
    assert stitcher.apply(buy, T0 + 24 * HOUR + 1) == ([], False)
    assert buy["client_ip"] is None and "stitched_from" not in buy


def test_a_private_ip_is_never_remembered(stitcher: Stitcher) -> None:
    """Only a public IP is kept for stitching; a private one fills nothing."""
    stitcher.apply(page_view(client_ip="192.168.1.5", client_ip_class="private"), T0)
    buy = callback()
    stitcher.apply(buy, T0 + 1)
    assert buy["client_ip"] is None
    assert buy["user_agent"] == "Mozilla/5.0"


def test_consent_is_the_receiving_events(stitcher: Stitcher) -> None:
    """An event whose ad_user_data is denied receives nothing, though the page view that
    carried the data had no consent stated at all."""
    stitcher.apply(page_view(), T0)
    buy = callback(consent=Consent(ad_user_data="denied"))
    assert stitcher.apply(buy, T0 + 1)[1] is False
    assert (buy["client_ip"], buy.get("user_agent")) == (None, None)


def test_identify_links_the_anonymous_id_to_the_user(stitcher: Stitcher) -> None:
    """After an identify of anon-1 as u-1, an event known only by u-1 gets anon-1's IP."""
    stitcher.apply(page_view(), T0)
    stitcher.apply({"event_id": "id-1", "anonymous_id": "anon-1", "user_id": "u-1"}, T0 + 1)
    buy = callback(anonymous_id=None, user_id="u-1")
    stitcher.apply(buy, T0 + 2)
    assert (buy["client_ip"], buy["stitched_from"]) == ("81.2.69.142", "pv-1")


def test_alias_links_the_previous_id_to_the_user(stitcher: Stitcher) -> None:
    """An alias of anon-1 to u-1 gives u-1 what anon-1 carried."""
    stitcher.apply(page_view(), T0)
    alias = {"event_id": "al-1", "user_id": "u-1", "previous_id": "anon-1"}
    stitcher.apply(alias, T0 + 1)
    buy = callback(anonymous_id=None, user_id="u-1")
    stitcher.apply(buy, T0 + 2)
    assert buy["fbp"] == "fb.1.17.12"


def test_rows_never_hold_the_raw_email(stitcher: Stitcher) -> None:
    """What is stored for stitching holds the email's hash only."""
    rows, _ = stitcher.apply(page_view(), T0)
    assert rows
    assert all(b"xample" not in row.body for row in rows)
    assert all(hashlib.sha256(b"jane@example.com").hexdigest().encode() in r.body for r in rows)


def test_the_state_survives_a_restart_through_its_rows(stitcher: Stitcher) -> None:
    """A new stitcher loaded from the rows the first one returned fills as it would have."""
    rows, _ = stitcher.apply(page_view(), T0)
    restarted = Stitcher("shop", window_secs=24 * HOUR)
    restarted.load([(r.kind, r.id, r.seen_at, r.body) for r in rows], T0 + 1)
    buy = callback()
    restarted.apply(buy, T0 + 2)
    assert buy["client_ip"] == "81.2.69.142"


def test_an_unchanged_record_is_not_rewritten_every_event(stitcher: Stitcher) -> None:
    """Page views carrying the same data write a row the first time and not again soon."""
    assert stitcher.apply(page_view("pv-1"), T0)[0]
    assert stitcher.apply(page_view("pv-2"), T0 + 10)[0] == []
    assert stitcher.apply(page_view("pv-3", fbp="fb.1.17.13"), T0 + 20)[0]


def test_the_state_is_bounded(stitcher: Stitcher) -> None:
    """Beyond max_ids, the least recently seen person is forgotten first."""
    small = Stitcher("shop", window_secs=HOUR, max_ids=2)
    for n in range(3):
        small.apply(page_view(f"pv-{n}", anonymous_id=f"anon-{n}"), T0 + n)
    first, last = callback(anonymous_id="anon-0"), callback(anonymous_id="anon-2")
    small.apply(first, T0 + 5)
    small.apply(last, T0 + 5)
    assert (first["client_ip"], last["client_ip"]) == (None, "81.2.69.142")
