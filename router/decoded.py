"""Stored events decoded once per process and shared by the dispatchers of their store."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Final

from router import codec
from router.event import Event

#: Decoded events kept at most (about 5 KB each: ~170 MB at worst). Only a backlog that the
#: store's destinations drain at different speeds fills it; delivery that keeps up holds an
#: event only until every destination it goes to has mapped it.
DEFAULT_SIZE: Final = 32_768
#: Evicted entries whose count of dispatchers still to come is remembered, per cached entry
#: (a key and a count: ~100 bytes each, against ~6 KB per decoded event).
REMEMBERED_PER_ENTRY: Final = 4


class _Entry:
    __slots__ = ("event", "left", "stored")

    def __init__(self, stored: bytes, event: Event, left: int) -> None:
        self.stored, self.event, self.left = stored, event, left


class DecodedEvents:
    """A bounded cache of decoded :class:`Event` by (store, seq), checked against the bytes.

    Every destination of a store maps the same stored events: the first dispatcher to claim
    one decodes it, the others get the same ``Event`` (frozen, so sharing it is safe). An
    entry is served only for the very bytes it was decoded from: an event erased (or stripped
    by retention) since then was read back with other bytes, so it is decoded afresh and the
    entry replaced; what a claim reads from the outbox is what is mapped, as without the cache.

    An entry goes once every dispatcher that :meth:`join` ed for its store and takes its
    event's name has had it; beyond ``size`` entries (dispatchers far apart in a backlog, a
    route's filters or consent leaving a destination out), the oldest cached goes first.
    How many dispatchers it still waited for is remembered: decoded again, it is kept for
    those only, not for every dispatcher of its store. (Counted afresh, an event re-decoded
    by a lagging dispatcher stayed until evicted, as if the faster ones were still to come:
    with lanes a backlog apart, such entries filled the cache, and each of them cost the
    decoding of an event that would have been used.)
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        #: (store, seq) -> the stored bytes, their event, how many dispatchers still want it
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        #: (store, seq) -> how many dispatchers an evicted entry still waited for
        self._evicted: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._takers: dict[str, list[Collection[str] | None]] = {}
        self._uses: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def join(self, store: str, names: Collection[str] | None) -> None:
        """A dispatcher of ``store`` maps events through this cache: those named ``names``
        (``None``: every event)."""
        self._takers.setdefault(store, []).append(names)
        self._uses.clear()

    def _uses_of(self, store: str, name: str) -> int:
        uses = self._uses.get((store, name))
        if uses is None:
            takers = self._takers.get(store, ())
            uses = sum(1 for names in takers if names is None or name in names)
            self._uses[(store, name)] = uses
        return uses

    def event(self, store: str, seq: int, stored: bytes) -> Event:
        """The event ``stored`` (event ``seq`` of ``store``) decodes to."""
        key = (store, seq)
        entries = self._entries
        found = entries.get(key)
        if found is not None and (found.stored is stored or found.stored == stored):
            found.left -= 1
            if found.left <= 0:
                del entries[key]
            return found.event
        event = codec.decode(stored)
        evicted = self._evicted.pop(key, None)
        left = (self._uses_of(store, event.name) if evicted is None else evicted) - 1
        if found is not None:
            del entries[key]
        if left > 0:
            if len(entries) >= self.size:
                self._remember(*entries.popitem(last=False))
            entries[key] = _Entry(stored, event, left)
        return event

    def _remember(self, key: tuple[str, int], entry: _Entry) -> None:
        evicted = self._evicted
        evicted[key] = entry.left
        if len(evicted) > self.size * REMEMBERED_PER_ENTRY:
            evicted.popitem(last=False)
