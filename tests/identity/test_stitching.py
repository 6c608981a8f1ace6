"""Identity stitching's look-up: a person's committed events within the window fill what a
later event lacks, linked one level through events with both ids, with the receiver's consent."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

from router import codec
from router.clock import FakeClock
from router.event import Consent
from router.identity.stitching import LOOKUP_LIMIT, PATHS, Stitcher, person_ids
from router.outbox.base import NewEvent
from router.outbox.persons import PersonIndex, person_events_sql
from router.outbox.schema import prepare
from router.outbox.sqlite import SqliteOutbox
from router.testing.events import make_event

HOUR = 3600.0
WINDOW = 24 * HOUR
#: A purchase's identity fields emptied: an event has only what a test gives it.
NOBODY: dict[str, Any] = {
    "user_id": None,
    "user_agent": None,
    "client_ip": None,
    "client_ip_origin": "missing",
    "client_ip_class": "missing",
    "emails": (),
}
JANE_SHA256 = hashlib.sha256(b"jane@example.com").hexdigest()


def page_view(event_id: str = "pv-1", **fields: Any) -> dict[str, Any]:
    """A browser page view's fields: a public IP, a user agent, Meta's browser id, an email."""
    return {
        "event_id": event_id,
        "anonymous_id": "anon-1",
        "user_id": None,
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


class Shop:
    """A store with stitching on over a real outbox: commit events, then stitch one."""

    def __init__(self, outbox: SqliteOutbox, clock: FakeClock, store: str = "shop") -> None:
        self.outbox, self.clock, self.store = outbox, clock, store
        self.stitcher = Stitcher(store, window_secs=WINDOW)

    async def commit(self, fields: dict[str, Any], *, ago: float = 0.0) -> None:
        """Store an event with ``fields`` (a full purchase otherwise) received ``ago`` secs ago."""
        anonymous_id, user_id = person_ids(fields)
        event = attrs.evolve(make_event(store=self.store), **(NOBODY | fields))
        body = codec.encode(event)
        received = self.clock.now() - ago
        new = NewEvent(self.store, fields["event_id"], received, ("hook",), body, anonymous_id)
        await self.outbox.append([new._replace(user_id=user_id)])

    async def stitch(self, fields: dict[str, Any]) -> bool:
        """Fill ``fields`` as ingest does: only if the event needs it, from one look-up."""
        if not self.stitcher.needs(fields):
            return False
        anonymous_id, user_id = person_ids(fields)
        since = self.clock.now() - self.stitcher.window_secs
        found = await self.outbox.person_events(
            self.store, anonymous_id, user_id, since, LOOKUP_LIMIT, PATHS
        )
        return self.stitcher.fill(fields, found)


@pytest.fixture
def shop(outbox: SqliteOutbox, clock: FakeClock) -> Shop:
    return Shop(outbox, clock)


async def test_a_later_event_of_the_same_person_gets_what_it_lacks(shop: Shop) -> None:
    """The callback gets the page view's IP (origin stitched), user agent, fbp and the
    hashed email, and names the page view as their source."""
    await shop.commit(page_view(), ago=HOUR)
    buy = callback()
    assert await shop.stitch(buy)
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
    assert buy["emails"] == (JANE_SHA256,)


async def test_what_the_event_carries_itself_wins(shop: Shop) -> None:
    """A field the event has is never replaced, nor is a public IP of its own."""
    await shop.commit(page_view())
    buy = callback(client_ip="8.8.8.8", client_ip_class="public", client_ip_origin="payload")
    buy["fbp"] = "fb.1.99.99"
    assert await shop.stitch(buy)
    assert (buy["client_ip"], buy["client_ip_origin"], buy["fbp"]) == (
        "8.8.8.8",
        "payload",
        "fb.1.99.99",
    )
    assert buy["user_agent"] == "Mozilla/5.0"


async def test_an_event_with_a_public_ip_and_user_agent_is_not_stitched(shop: Shop) -> None:
    """Only an event lacking a public IP or a user agent is looked up; a browser's is not,
    even when it lacks a click id the person's earlier events carried."""
    await shop.commit(page_view())
    browser = page_view("pv-2", fbp=None, emails=())
    assert not shop.stitcher.needs(browser)
    assert not await shop.stitch(browser)
    assert browser["fbp"] is None


async def test_nothing_older_than_the_window_fills(shop: Shop) -> None:
    """An event received more than window_hours before fills nothing."""
    await shop.commit(page_view(), ago=WINDOW + 1)
    buy = callback()
    assert not await shop.stitch(buy)
    assert buy["client_ip"] is None and "stitched_from" not in buy


async def test_a_private_ip_never_fills(shop: Shop) -> None:
    """Only a public IP fills; a private one does not, though the user agent does."""
    await shop.commit(page_view(client_ip="192.168.1.5", client_ip_class="private"))
    buy = callback()
    assert await shop.stitch(buy)
    assert buy["client_ip"] is None
    assert buy["user_agent"] == "Mozilla/5.0"


async def test_consent_is_the_receiving_events(shop: Shop) -> None:
    """An event whose ad_user_data is denied receives nothing, though the page view that
    carried the data had its consent granted."""
    await shop.commit(page_view())
    buy = callback(consent=Consent(ad_user_data="denied"))
    assert not shop.stitcher.needs(buy)
    assert not await shop.stitch(buy)
    assert (buy["client_ip"], buy.get("user_agent")) == (None, None)


async def test_identify_links_the_anonymous_id_to_the_user(shop: Shop) -> None:
    """After an identify of anon-1 as u-1, an event known only by u-1 gets anon-1's IP."""
    await shop.commit(page_view(), ago=2)
    await shop.commit({"event_id": "id-1", "anonymous_id": "anon-1", "user_id": "u-1"}, ago=1)
    buy = callback(anonymous_id=None, user_id="u-1")
    assert await shop.stitch(buy)
    assert (buy["client_ip"], buy["stitched_from"]) == ("81.2.69.142", "pv-1")


async def test_an_event_with_both_ids_links_the_user_to_the_anonymous_id(shop: Shop) -> None:
    """A logged-in page view known by u-1 only fills a callback known by anon-1 only, once
    any event carried both ids."""
    await shop.commit(page_view(anonymous_id=None, user_id="u-1"), ago=2)
    await shop.commit({"event_id": "t-1", "anonymous_id": "anon-1", "user_id": "u-1"}, ago=1)
    buy = callback()
    assert await shop.stitch(buy)
    assert buy["stitched_from"] == "pv-1"


async def test_alias_links_the_previous_id_to_the_user(shop: Shop) -> None:
    """An alias of anon-1 to u-1 gives u-1 what anon-1 carried."""
    await shop.commit(page_view(), ago=2)
    alias = {"event_id": "al-1", "anonymous_id": None, "user_id": "u-1", "previous_id": "anon-1"}
    assert person_ids(alias) == ("anon-1", "u-1")
    await shop.commit(alias, ago=1)
    buy = callback(anonymous_id=None, user_id="u-1")
    assert await shop.stitch(buy)
    assert buy["fbp"] == "fb.1.17.12"


async def test_linking_goes_one_level_deep(shop: Shop) -> None:
    """anon-2's page view does not reach anon-1 through u-1 (anon-1 ~ u-1 ~ anon-2): two
    links away is another device, and another look-up."""
    await shop.commit(page_view(anonymous_id="anon-2"), ago=3)
    await shop.commit({"event_id": "id-2", "anonymous_id": "anon-2", "user_id": "u-1"}, ago=2)
    await shop.commit({"event_id": "id-1", "anonymous_id": "anon-1", "user_id": "u-1"}, ago=1)
    buy = callback()
    assert not await shop.stitch(buy)
    assert buy["client_ip"] is None


async def test_the_newest_event_that_carried_a_field_gives_it(shop: Shop) -> None:
    """With two page views, the IP and user agent are the later one's."""
    await shop.commit(page_view("pv-1"), ago=2)
    await shop.commit(page_view("pv-2", client_ip="81.2.69.160", user_agent="Safari"), ago=1)
    buy = callback()
    assert await shop.stitch(buy)
    assert (buy["client_ip"], buy["user_agent"], buy["stitched_from"]) == (
        "81.2.69.160",
        "Safari",
        "pv-2",
    )


async def test_the_email_is_filled_as_its_hash_never_as_sent(shop: Shop) -> None:
    """A filled email is the SHA-256 of the normalised address, not the address."""
    await shop.commit(page_view())
    buy = callback()
    await shop.stitch(buy)
    assert buy["emails"] == (JANE_SHA256,)
    assert "example" not in repr(buy)


async def test_another_stores_events_fill_nothing(
    shop: Shop, outbox: SqliteOutbox, clock: FakeClock
) -> None:
    """The same anonymous_id in another store is another person."""
    await Shop(outbox, clock, store="other").commit(page_view())
    buy = callback()
    assert not await shop.stitch(buy)


async def test_purged_events_fill_nothing(
    shop: Shop, outbox: SqliteOutbox, clock: FakeClock
) -> None:
    """Retention bounds stitching: once the page view is purged, it fills nothing."""
    await shop.commit(page_view(), ago=100)
    await outbox.purge("shop", [], before=clock.now() - 50)
    buy = callback()
    assert not await shop.stitch(buy)


def lookup_steps(tmp_path: Path, events_of_the_id: int) -> int:
    """SQLite VM steps of one look-up of an id that ``events_of_the_id`` events share, with an
    identify linking it to a user who has as many (the index caught up first)."""
    path = tmp_path / f"steps-{events_of_the_id}.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        prepare(db, path=path, now=0.0)
        db.executemany(
            "INSERT INTO events (store, event_id, received_at, routes, body, anonymous_id,"
            " user_id) VALUES ('shop', ?, 1.0, ' hook ', x'7b7d', ?, ?)",
            [
                (f"e{n}", "anon-1" if n % 2 else None, None if n % 2 else "u-1")
                for n in range(events_of_the_id * 2)
            ]
            + [("id-1", "anon-1", "u-1")],
        )
    index = PersonIndex(path)
    index._catch_up()
    db = index._connect()
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    db.set_progress_handler(count, 1)
    found = db.execute(
        person_events_sql(len(PATHS)), ("shop", "anon-1", None, 0.0, LOOKUP_LIMIT, *PATHS)
    ).fetchall()
    index._close()
    assert len(found) == LOOKUP_LIMIT
    return steps[0]


def test_an_id_shared_by_thousands_of_events_costs_what_a_customers_does(tmp_path: Path) -> None:
    """The look-up reads a bounded number of rows however many events share the id (a
    sender's constant anonymousId): each branch stops at the limit."""
    assert lookup_steps(tmp_path, 5_000) < 1.2 * lookup_steps(tmp_path, 50)
