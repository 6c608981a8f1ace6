"""Identity stitching: what a person's earlier events carried fills a later event lacking it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

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
#: Under this name a person's email is kept: SHA-256 of the trimmed, lowercased address (the
#: Meta and Spotify normalisation), never the address itself.
EMAIL_SHA256: Final = "email_sha256"
#: Id kinds a person is known by; ``previous_id`` (alias) may be either.
KINDS: Final = ("user_id", "anonymous_id")
#: A record unchanged but for its time is written to the outbox at most this often.
REFRESH_SECS: Final = 300.0

#: field -> (value, Unix seconds it was seen, the event id that carried it)
Record = dict[str, tuple[str, float, str]]


class IdentityRow(NamedTuple):
    """One row of the outbox's ``identities`` table, written with the event that changed it."""

    store: str
    kind: str
    id: str
    seen_at: float
    body: bytes


class Stitcher:
    """One store's identity state: the latest public IP, user agent, ids and hashed email seen
    for each ``user_id`` and ``anonymous_id``, linked by identify and alias calls.

    In memory, least recently used first out beyond ``max_ids``; every change is returned as
    :class:`IdentityRow` s for the outbox to commit with the event, and :meth:`load` warms the
    state from them at start. Consent is the receiving event's: a denied ``ad_user_data``
    receives nothing.
    """

    def __init__(self, store: str, *, window_secs: float, max_ids: int = 200_000) -> None:
        self.store = store
        self.window_secs = window_secs
        self.max_ids = max_ids
        self._records: OrderedDict[tuple[str, str], Record] = OrderedDict()
        self._written: dict[tuple[str, str], float] = {}

    def load(self, rows: Iterable[tuple[str, str, float, bytes]], now: float) -> None:
        """Warm the state from stored ``(kind, id, seen_at, body)`` rows, oldest first."""
        since = now - self.window_secs
        for kind, id_, seen_at, body in rows:
            if seen_at >= since:
                record = {k: (v[0], float(v[1]), v[2]) for k, v in orjson.loads(body).items()}
                self._put((kind, id_), record, seen_at)

    def apply(self, kw: dict[str, Any], now: float) -> tuple[list[IdentityRow], bool]:
        """Fill ``kw`` (an event's fields) from what its person's earlier events carried, and
        remember what it carries; return the rows to store and whether anything was filled."""
        keys, previous = _keys(kw)
        if not keys:
            return [], False
        own = _carried(kw, now)
        merged = self._merged(keys + previous, now)
        filled = False
        if merged and _consented(kw):
            filled = _fill(kw, merged)
        if len(keys) == 1 and not previous and self._fresh(keys[0], own, merged, now):
            return [], filled  # the usual page view: nothing new to remember
        record = merged | own
        if not record:
            return [], filled
        # an alias's previous id gets the record only where it is known (of either kind)
        targets = keys + [key for key in previous if key in self._records]
        body: list[bytes] = []  # the record's JSON, made once for all its rows, if any
        rows = [self._put(key, record, now, body) for key in targets]
        return [row for row in rows if row is not None], filled

    def _fresh(self, key: tuple[str, str], own: Record, merged: Record, now: float) -> bool:
        """Whether ``key``'s record already holds every value of ``own`` and was written
        less than ``REFRESH_SECS`` ago (its times may then lag by up to that much)."""
        if now - self._written.get(key, -REFRESH_SECS) >= REFRESH_SECS:
            return False
        return all((seen := merged.get(k)) is not None and seen[0] == v[0] for k, v in own.items())

    def _merged(self, keys: list[tuple[str, str]], now: float) -> Record:
        since = now - self.window_secs
        merged: Record = {}
        for key in keys:
            record = self._records.get(key)
            if record is None:
                continue
            self._records.move_to_end(key)
            for field, seen in record.items():
                if seen[1] >= since and (field not in merged or seen[1] > merged[field][1]):
                    merged[field] = seen
        return merged

    def _put(
        self, key: tuple[str, str], record: Record, now: float, body: list[bytes] | None = None
    ) -> IdentityRow | None:
        """Remember ``record`` for ``key``; the row to store, unless nothing changed lately.
        ``body`` caches the record's JSON across the keys of one event."""
        records = self._records
        previous = records.get(key)
        records[key] = record
        if previous is None:  # a new key is already last; only then can the cache overflow
            if len(records) > self.max_ids:
                old, _ = records.popitem(last=False)
                self._written.pop(old, None)
        else:
            records.move_to_end(key)
            unchanged = len(previous) == len(record) and all(
                (seen := previous.get(k)) is not None and seen[0] == v[0] for k, v in record.items()
            )
            if unchanged and now - self._written.get(key, -REFRESH_SECS) < REFRESH_SECS:
                return None
        self._written[key] = now
        if body is None:
            body = []
        if not body:
            body.append(orjson.dumps(record))
        return IdentityRow(self.store, key[0], key[1], now, body[0])


def _keys(kw: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The ids the event's person is known by, and an alias's previous id under either kind."""
    keys = [(kind, v) for kind in KINDS if (v := kw.get(kind)) is not None]
    previous_id = kw.get("previous_id")
    if previous_id is None:
        return keys, []
    return keys, [(kind, previous_id) for kind in KINDS if (kind, previous_id) not in keys]


def _carried(kw: Mapping[str, Any], now: float) -> Record:
    """What the event itself carries that a later event of the same person could use."""
    event_id: str = kw["event_id"]
    own: Record = {}
    if kw.get("client_ip_class") == "public" and kw.get("client_ip_origin") != "stitched":
        own["client_ip"] = (kw["client_ip"], now, event_id)
    for field in COPIED:
        if (v := kw.get(field)) is not None:
            own[field] = (v, now, event_id)
    for email in kw.get("emails") or ():
        if (hashed := privacy.hash_email(email, "meta")) is not None:
            own[EMAIL_SHA256] = (hashed, now, event_id)
            break
    return own


def _consented(kw: Mapping[str, Any]) -> bool:
    consent = kw.get("consent")
    return consent is None or consent.ad_user_data != "denied"


def _fill(kw: dict[str, Any], merged: Record) -> bool:
    """Set the event's missing fields from ``merged``; ``stitched_from`` names the event the
    IP came from, else the latest one that gave a field."""
    source: tuple[float, str] | None = None
    ip = merged.get("client_ip")
    if ip is not None and kw.get("client_ip_class") != "public":
        kw["client_ip"], kw["client_ip_origin"], kw["client_ip_class"] = ip[0], "stitched", "public"
        source = (float("inf"), ip[2])
    for field in COPIED:
        seen = merged.get(field)
        if seen is not None and kw.get(field) is None:
            kw[field] = seen[0]
            source = max(source or seen[1:], seen[1:])
    seen = merged.get(EMAIL_SHA256)
    if seen is not None and not kw.get("emails"):
        kw["emails"] = (seen[0],)
        source = max(source or seen[1:], seen[1:])
    if source is None:
        return False
    kw["stitched_from"] = source[1]
    return True
