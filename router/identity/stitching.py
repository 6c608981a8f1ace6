"""Identity stitching: what a person's earlier events carried fills a later event lacking it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from router import privacy

#: Fields copied as they were sent (the user agent, click ids and cookie-derived ids).
COPIED: Final = (
    "user_agent",
    "fbc",
    "fbp",
    "gclid",
    "gbraid",
    "wbraid",
    "ga_client_id",
    "spotify_device_id",
)
#: What a person's earlier event is read for, in this order: JSON paths of its stored body
#: (its first email only; the outbox extracts them, sparing the event loop whole bodies).
PATHS: Final = (
    "$.client_ip",
    "$.client_ip_class",
    "$.client_ip_origin",
    *(f"$.{field}" for field in COPIED),
    "$.emails[0]",
)
#: A person's latest events read for one stitched event, at most: enough for a page view, an
#: identify and a few more in between; the newest that carried a field wins.
LOOKUP_LIMIT: Final = 10


class Stitcher:
    """One store's identity stitching.

    Nothing is remembered at ingest: an event that lacks a public client IP or a user agent
    (the signature of a server-side callback, a payment gateway's) is filled from the latest
    committed events of its person within ``window_secs``, which the outbox looks up by the
    ``anonymous_id`` and ``user_id`` stored beside each event (:meth:`Outbox.person_events`).
    Events of one request or commit group do not see each other: the look-up reads what is
    committed. Retention bounds it: a purged event fills nothing. Consent is the receiving
    event's: a denied ``ad_user_data`` receives nothing, and is not even looked up.
    """

    def __init__(self, store: str, *, window_secs: float) -> None:
        self.store = store
        self.window_secs = window_secs

    @staticmethod
    def needs(kw: Mapping[str, Any]) -> bool:
        """Whether the event (its fields) is one to stitch: known by an id, lacking a public
        IP or a user agent, and not denied ad_user_data."""
        if kw.get("client_ip_class") == "public" and kw.get("user_agent") is not None:
            return False
        if kw.get("anonymous_id") is None and kw.get("user_id") is None:
            return False
        consent = kw.get("consent")
        return consent is None or consent.ad_user_data != "denied"

    def fill(self, kw: dict[str, Any], found: Iterable[tuple[str, str]]) -> bool:
        """Set the event's missing fields from ``found``, its person's events as
        ``(event_id, JSON array of the values at PATHS)``, newest first; whether anything was
        filled.

        ``stitched_from`` names the event the IP came from, else the newest one that gave a
        field. The email is filled as its SHA-256 (Meta's normalisation), never as sent.
        """
        source: str | None = None
        ip_source: str | None = None
        missing = [field for field in COPIED if kw.get(field) is None]
        wants_ip = kw.get("client_ip_class") != "public"
        wants_email = not kw.get("emails")
        for event_id, carried in found:
            if not (wants_ip or missing or wants_email):
                break
            ip, ip_class, ip_origin, *copied, email = orjson.loads(carried)
            earlier = dict(zip(COPIED, copied, strict=True))
            gave = False
            if wants_ip and ip_class == "public" and ip_origin != "stitched":
                kw["client_ip"], kw["client_ip_origin"] = ip, "stitched"
                kw["client_ip_class"], ip_source, wants_ip = "public", event_id, False
            for field in [f for f in missing if earlier[f] is not None]:
                kw[field], gave = earlier[field], True
                missing.remove(field)
            hashed = privacy.hash_email(email, "meta") if wants_email else None
            if hashed is not None:
                kw["emails"], gave, wants_email = (hashed,), True, False
            if gave and source is None:
                source = event_id
        if ip_source is None and source is None:
            return False
        kw["stitched_from"] = ip_source or source
        return True


def person_ids(kw: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The ``anonymous_id`` and ``user_id`` an event is stored under; an alias without an
    anonymous_id files its ``previous_id`` as one, so the alias links the two."""
    anonymous_id = kw.get("anonymous_id")
    if anonymous_id is None:
        anonymous_id = kw.get("previous_id")
    return anonymous_id, kw.get("user_id")
