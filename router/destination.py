"""The destination contract: what a built-in or third-party plugin declares, maps and returns."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar

import attrs

from router.event import Event
from router.http import HttpClient

OutcomeKind = Literal["delivered", "retry", "rejected"]


@attrs.frozen(slots=True)
class Outcome:
    """What happened to one event of a batch, classified once, at the adapter boundary.

    ``reason`` is a short stable code (``http_503``, ``timeout``, ``mapping_error``...), ``detail``
    a truncated platform answer kept for the dead-letter view (never logged), ``retry_after`` the
    platform's own wait in seconds. ``pause`` asks the dispatcher to stop the whole destination for
    a while (rate limited, credentials refused); ``whole_batch`` says the platform rejected the
    batch as a whole, so the dispatcher splits it to isolate the bad event.
    """

    kind: OutcomeKind
    reason: str = ""
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""
    pause: bool = False
    whole_batch: bool = False


DELIVERED: Final = Outcome("delivered", "ok")


class MappingError(ValueError):
    """An event this destination cannot express; permanent, never retried."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@attrs.frozen
class Health:
    """A destination's answer to a health check, which never sends event data."""

    ok: bool
    detail: str = ""


C = TypeVar("C")


class Destination(abc.ABC, Generic[C]):
    """Base class of every destination plugin, registered under ``tagless.destinations``.

    A plugin declares its ``name``, its attrs ``config_class`` (structured strictly from the store
    YAML), the canonical event names it supports (``None``: all) and implements :meth:`map`
    (pure, deterministic, no I/O) and :meth:`send` (one outcome per payload, in order). It never
    sleeps or retries: the outbox owns time.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[Any]]
    supported_events: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: C, http: HttpClient) -> None:
        self.config = config
        self.http = http

    @property
    def max_batch_size(self) -> int:
        """The largest number of events one :meth:`send` call takes."""
        return 1

    @abc.abstractmethod
    def map(self, event: Event) -> Any:
        """Turn one canonical event into this platform's payload; raise MappingError if it can't."""

    @abc.abstractmethod
    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        """Deliver mapped payloads; return exactly one outcome per payload, in order."""

    async def health(self) -> Health:
        """Check reachability and credentials without sending event data."""
        return Health(ok=True, detail="no health check")
