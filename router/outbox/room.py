"""Whether the outbox has room for more events: undelivered events per destination, free disk."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import attrs
import structlog

from router.clock import Clock
from router.outbox.base import NewEvent, OutboxFull, OutboxLowOnDisk, OutboxUnavailable
from router.outbox.migrations import SCHEMA_VERSION
from router.outbox.recount import count_outside, cursor_of, pending_now

log = structlog.get_logger("tagless.outbox")

_RETRYING: Final = (
    "SELECT count(*) FROM deliveries WHERE store = ? AND destination = ? AND state = 'retry'"
)
#: How often a readiness check may try a commit while the last one failed.
PROBE_EVERY_SECS: Final = 1.0

#: Free bytes on the filesystem holding a path.
FreeBytes = Callable[[Path], int]


def statvfs_free(path: Path) -> int:
    """Bytes an unprivileged process may still write on ``path``'s filesystem."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


@attrs.define
class LaneCount:
    """One destination's undelivered events: routed past its cursor, and retries waiting."""

    pending: int = 0
    retrying: int = 0


class Backlog:
    """Undelivered events per (store, destination), kept in memory so that ingest can check
    them on every request without a query.

    A destination's figure is the events routed to it past its durable cursor (waiting or in
    flight) plus its retries waiting; dead letters wait for an operator and do not count. A
    store's figure is the largest of its destinations'. Commits add, cursor moves and settled
    retries take away, and :meth:`reset` puts in what the database counted (at start and from
    time to time), which also takes in what another process (a replay from the CLI) changed.
    """

    def __init__(self) -> None:
        self._stores: dict[str, dict[str, LaneCount]] = {}

    def lane(self, store: str, destination: str) -> LaneCount:
        lanes = self._stores.setdefault(store, {})
        count = lanes.get(destination)
        if count is None:
            count = lanes[destination] = LaneCount()
        return count

    def committed(self, added: Mapping[tuple[str, tuple[str, ...]], int]) -> None:
        """Events were stored: ``added`` counts them by store and routes (``id`` or ``id!``)."""
        for (store, routes), events in added.items():
            for route in routes:
                self.lane(store, route.rstrip("!")).pending += events

    def settled(self, store: str, destination: str, *, passed: int, retrying: int) -> None:
        """The cursor moved past ``passed`` routed events; ``retrying`` more (or fewer) retry."""
        count = self.lane(store, destination)
        count.pending = max(0, count.pending - passed)
        count.retrying = max(0, count.retrying + retrying)

    def reset(self, store: str, destination: str, *, pending: int, retrying: int) -> None:
        """Take the database's count as the figure."""
        self._stores.setdefault(store, {})[destination] = LaneCount(pending, retrying)

    def of_store(self, store: str) -> int:
        """The store's undelivered events: its largest destination's."""
        lanes = self._stores.get(store)
        if not lanes:
            return 0
        return max(count.pending + count.retrying for count in lanes.values())


class DiskFloor:
    """Whether the free space under the outbox is below the floor, looked up at most once per
    ``every_secs`` (ingest asks on every request; a statvfs each time is not needed)."""

    def __init__(
        self,
        directory: Path,
        min_free_bytes: int,
        clock: Clock,
        *,
        free_bytes: FreeBytes = statvfs_free,
        every_secs: float = 1.0,
    ) -> None:
        self.directory = directory
        self.min_free_bytes = min_free_bytes
        self.clock = clock
        self.free_bytes = free_bytes
        self.every_secs = every_secs
        self._checked_at: float | None = None
        self._low: int | None = None

    def low(self) -> int | None:
        """The free bytes when they are below the floor, else None."""
        if self.min_free_bytes <= 0:
            return None
        now = self.clock.now()
        last = self._checked_at
        if last is None or not 0 <= now - last < self.every_secs:
            self._checked_at = now
            self._low = self._look()
        return self._low

    def _look(self) -> int | None:
        try:
            free = self.free_bytes(self.directory)
        except OSError as error:  # the commit will tell; do not refuse on a failed look
            log.warning("disk_space_unknown", error=str(error))
            return None
        return free if free < self.min_free_bytes else None


class Writer(Protocol):
    """What admission reads of a backend's writer."""

    @property
    def is_open(self) -> bool: ...

    @property
    def queued_events(self) -> int: ...

    failure: str | None

    async def write(self, write: Any) -> Any: ...


class Admission:
    """Decides whether an append may go in, and whether ingest is ready at all.

    An append is refused, before anything is queued, while the outbox's disk is below its
    floor (:class:`OutboxLowOnDisk`) or while a store of it already has
    ``max_pending_events`` undelivered events (:class:`OutboxFull`; events queued for the
    next commit count too, so concurrent requests cannot all slip past the cap).
    """

    def __init__(
        self,
        writer: Writer,
        clock: Clock,
        max_pending_events: int,
        disk: DiskFloor,
        *,
        path: Path | None = None,
    ) -> None:
        self.writer = writer
        #: The SQLite file a recount reads outside the writers' lock first (see :meth:`refresh`).
        self.path = path
        self.clock = clock
        self.max_pending_events = max_pending_events
        self.disk = disk
        self.backlog = Backlog()
        #: Set whenever a store's backlog figure reaches half its cap: a process that does not
        #: see the settlements of what it commits counts afresh then (router/app.py).
        self.near_cap = asyncio.Event()
        self._probed_at: float | None = None

    def check(self, events: Sequence[NewEvent]) -> None:
        """Raise if ``events`` may not be appended now."""
        free = self.disk.low()
        if free is not None:
            raise OutboxLowOnDisk(
                f"the outbox's disk is nearly full ({free >> 20} MB free; the floor is"
                f" {self.disk.min_free_bytes >> 20} MB)"
            )
        cap, queued = self.max_pending_events, self.writer.queued_events
        for store in {event.store for event in events}:
            waiting = self.backlog.of_store(store) + queued
            if 2 * waiting >= cap:
                self.near_cap.set()
            if waiting >= cap:
                raise OutboxFull(
                    f"{waiting} events of this store wait for delivery; the cap is {cap}"
                )

    async def refresh(self, store: str, destinations: Sequence[str]) -> None:
        """Count each destination's undelivered events in the database; take that as the figure.

        The count runs inside a group commit, and the figure is set as soon as that commit is
        answered, before any later one is: every append and settlement of the same commit is
        either in the count or applied after it (commits add in ``on_commit``, settlements
        right after their write returns), never both. With a ``path``, the bulk of it is
        read first outside the writers' lock, and the commit reads only what changed since
        (router/outbox/recount.py).
        """
        seen = None
        if self.path is not None:
            try:
                seen = await asyncio.to_thread(count_outside, self.path, store, destinations)
            except sqlite3.Error as error:  # the commit counts all of it instead
                log.warning("recount_outside_failed", error=str(error))

        def count(db: sqlite3.Connection) -> list[tuple[str, int, int]]:
            counted = []
            for dest in destinations:
                waiting = pending_now(db, store, dest, cursor_of(db, store, dest), seen)
                retrying = db.execute(_RETRYING, (store, dest)).fetchone()[0]
                counted.append((dest, waiting, retrying))
            return counted

        counted: list[tuple[str, int, int]] = await self.writer.write(count)
        for dest, pending, retrying in counted:
            self.backlog.reset(store, dest, pending=pending, retrying=retrying)

    async def unready(self, stores: Iterable[str]) -> str | None:
        """Why ingest cannot commit now (a short code), or None.

        ``backlog_full`` only when every one of ``stores`` is at its cap. While the last commit
        failed, a check tries one (a header rewrite) at most once per ``PROBE_EVERY_SECS``, so
        that readiness comes back by itself once the database takes writes again.
        """
        if not self.writer.is_open:
            return "outbox_closed"
        if self.writer.failure is not None and not await self._probe_commit():
            return "commit_failed"
        if self.disk.low() is not None:
            return "low_disk"
        cap = self.max_pending_events
        names = list(stores)
        if names and all(self.backlog.of_store(store) >= cap for store in names):
            return "backlog_full"
        return None

    async def _probe_commit(self) -> bool:
        now = self.clock.now()
        if self._probed_at is not None and 0 <= now - self._probed_at < PROBE_EVERY_SECS:
            return False
        self._probed_at = now

        def touch(db: sqlite3.Connection) -> None:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        try:
            await self.writer.write(touch)
        except OutboxUnavailable:
            return False
        return self.writer.failure is None
