"""The outbox interface every backend implements, and the records that cross it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

import attrs

from router.destination import Outcome
from router.outbox.policy import RetryPolicy


class OutboxError(Exception):
    """The outbox could not take the write; nothing of it was stored."""

    retry_after: float = 1.0


class OutboxFull(OutboxError):
    """The store has as many undelivered events as ``max_pending_events`` allows."""

    retry_after = 10.0


class OutboxLowOnDisk(OutboxError):
    """Free space on the outbox's filesystem is below ``min_free_disk_mb``."""

    retry_after = 30.0


class OutboxUnavailable(OutboxError):
    """The database refused the write (disk full, I/O error, closed)."""


class OutboxStateError(OutboxUnavailable):
    """The database file is in a state this code must not run on; the message says why and
    what to do."""


class NewEvent(NamedTuple):
    """An event ready to be stored, with the destinations it is routed to (a tuple: ingest
    makes one per event, and a NamedTuple is three times cheaper to build than attrs)."""

    store: str
    event_id: str
    received_at: float
    routes: tuple[str, ...]
    body: bytes
    #: Who the event is about, stored beside the body for stitching's look-up: its
    #: ``anonymous_id`` (an alias without one: its ``previous_id``) and ``user_id``.
    anonymous_id: str | None = None
    user_id: str | None = None


class Claimed(NamedTuple):
    """One event handed to a dispatcher for one destination (a NamedTuple, like NewEvent:
    claims build one per event, and attrs' frozen __init__ showed in delivery profiles)."""

    seq: int
    event_id: str
    received_at: float
    body: bytes
    attempts: int = 0
    first_attempt_at: float | None = None
    #: The consent policy said: send this event to this destination without user data.
    without_user_data: bool = False


@attrs.frozen(slots=True)
class Claim:
    """Events claimed together for one destination; settle or release every claim."""

    store: str
    destination: str
    items: tuple[Claimed, ...]
    token: int
    is_retry: bool


@attrs.frozen(slots=True)
class DeadLetter:
    """An event a destination will not get without an operator's replay."""

    store: str
    destination: str
    seq: int
    event_id: str
    attempts: int
    reason: str
    last_status: int | None
    detail: str
    updated_at: float


@attrs.frozen(slots=True)
class LaneStatus:
    """Delivery counts of one (store, destination)."""

    store: str
    destination: str
    pending: int
    retrying: int
    dead: int
    cursor: int


class Outbox(Protocol):
    """Durable events and per-destination delivery state (README.md: "The promise")."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Store events and their delivery state durably (a known ``event_id`` is ignored).

        Returns only after the commit; raises :class:`OutboxError` having stored nothing.
        """

    def subscribe(self, store: str) -> asyncio.Event:
        """A new event, set whenever events of ``store`` are committed or replayed."""

    async def claim(self, store: str, destination: str, limit: int) -> Claim | None:
        """Claim up to ``limit`` events due for ``destination``: due retries and new events."""

    async def settle(
        self,
        claim: Claim,
        outcomes: Sequence[tuple[Claimed, Outcome]],
        policy: RetryPolicy,
        *,
        sends: Mapping[int, tuple[float, float]] | None = None,
    ) -> list[str]:
        """Record each event's outcome; return its final state: delivered, retry, dead or
        skipped (settled like delivered: the event was rightly not sent).

        The same commit writes the attempts log: ``sends`` says, by seq, when each sent
        event's request went out and how long it took (Unix seconds, seconds).

        A retry the policy gives up on (attempts or age) is dead, with both reasons.
        """

    async def release(self, claim: Claim) -> None:
        """Give a claim back unsent (shutdown): its events are due again at once."""

    async def next_due(self, store: str, destination: str) -> float | None:
        """When the earliest retry of ``destination`` falls due, if any."""

    async def dead_letters(
        self, store: str, destination: str | None = None, limit: int = 100
    ) -> list[DeadLetter]: ...

    async def replay(
        self,
        store: str,
        destination: str | None = None,
        *,
        seqs: Sequence[int] | None = None,
        event_ids: Sequence[str] | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
        dry_run: bool = False,
    ) -> int:
        """Make dead letters due again; return how many (or would be, with ``dry_run``)."""

    async def status(self, store: str, destinations: Sequence[str]) -> list[LaneStatus]: ...

    async def refresh_backlog(self, store: str, destinations: Sequence[str]) -> None:
        """Recount the undelivered events ``append`` checks ``max_pending_events`` against."""

    async def person_events(
        self,
        store: str,
        anonymous_id: str | None,
        user_id: str | None,
        since: float,
        limit: int,
        paths: tuple[str, ...],
    ) -> list[tuple[str, str]]:
        """The latest committed events of a person received since ``since``, newest first, at
        most ``limit``: ``(event_id, JSON array of the values at the body's JSON paths)``,
        read in the database, not the event loop. The person is the events with that
        anonymous_id or user_id, and one link further through events carrying both ids."""

    async def unready(self, stores: Iterable[str]) -> str | None:
        """Why ingest cannot commit now (a short code for ``/readyz``), or None."""
