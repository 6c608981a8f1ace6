"""The destination contract: what a built-in or third-party plugin declares, maps and returns."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Literal, TypeVar

import attrs

from router import codec
from router.event import Event

if TYPE_CHECKING:  # only for annotations: router.http builds Outcomes from this module
    from router.http import HttpClient

OutcomeKind = Literal["delivered", "retry", "rejected", "skipped"]


@attrs.frozen(slots=True)
class Outcome:
    """What happened to one event of a batch, classified once, at the adapter boundary.

    ``reason`` is a short stable code (``http_503``, ``timeout``, ``mapping_error``...), ``detail``
    a truncated platform answer kept for the dead-letter view (never logged), ``retry_after`` the
    platform's own wait in seconds. ``pause`` asks the dispatcher to stop the whole destination for
    a while (rate limited, credentials refused); ``whole_batch`` says the platform rejected the
    batch as a whole, so the dispatcher splits it to isolate the bad event. ``event_delay`` says
    ``retry_after`` concerns this event alone (the platform asked for it again later, such as
    Google Ads' ``TOO_RECENT_EVENT``): the destination goes on and the wait is not capped by
    ``max_pause_secs``, only by the event's age limit. ``skipped`` says the event was rightly
    not sent (consent removed what the platform needs): settled like ``delivered``, counted as
    ``skipped_consent`` with its reason, never a dead letter.
    """

    kind: OutcomeKind
    reason: str = ""
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""
    pause: bool = False
    whole_batch: bool = False
    event_delay: bool = False


DELIVERED: Final = Outcome("delivered", "ok")


class MappingError(ValueError):
    """An event this destination cannot express; permanent, never retried."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MissingIdentity(MappingError):
    """The event has none of the identifiers the platform needs to match it (Spotify: a public
    IP, device id, email or phone; Meta: any user data).

    When the event's route said "without user data", consent removed them: the event is
    skipped (``skipped_consent`` with this ``reason``), not dead-lettered. Otherwise the sender
    sent none, which the operator must see: it is dead-lettered like any MappingError.
    """


@attrs.frozen
class TestAnswer:
    """What a destination's test mode said: the platform's verdict and its answer, verbatim."""

    ok: bool
    status: int | None
    answer: str
    messages: tuple[str, ...] = ()


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

    Consent is decided before a destination sees an event: it gets only the events routed to
    it, with the user data removed where the consent policy says so. A mapping that cannot
    match such an event raises :class:`MissingIdentity`, which skips it instead of
    dead-lettering it.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[Any]]
    supported_events: ClassVar[frozenset[str] | None] = None
    #: The plugin API this plugin needs (``router.sdk.API_VERSION``): ``"1"`` runs on every
    #: 1.y, ``"1.2"`` on 1.2 and later 1.y. Discovery refuses a plugin that needs another.
    requires_api: ClassVar[str] = "1"

    def __init__(self, config: C, http: HttpClient) -> None:
        self.config = config
        self.http = http
        #: Unix seconds now; platforms with age limits check events against it in ``send``
        #: (``map`` stays pure). Tests replace it.
        self.now: Callable[[], float] = time.time

    @property
    def max_batch_size(self) -> int:
        """The largest number of events one :meth:`send` call takes."""
        return 1

    @property
    def max_event_age_secs(self) -> float | None:
        """The oldest event the platform takes, in seconds since it happened (``None``: no
        limit); a replay's dry run counts the events past it."""
        return None

    def routed_events(self) -> frozenset[str] | None:
        """The canonical names routing sends this instance (``None``: all): the class's
        ``supported_events``, unless the instance's config narrows them (Google Ads routes
        only the events it has a conversion action for)."""
        return self.supported_events

    @abc.abstractmethod
    def map(self, event: Event) -> Any:
        """Turn one canonical event into this platform's payload; raise MappingError if it can't."""

    def map_stored(self, stored: bytes) -> Any:
        """Map an event from its stored form (compact canonical JSON).

        The default decodes the ``Event`` and calls :meth:`map`. A destination that can build
        its payload from the stored JSON directly may override this for speed; its JSON must
        then be the same as :meth:`map`'s (``router.testing`` checks it).
        """
        return self.map(codec.decode(stored))

    @abc.abstractmethod
    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        """Deliver mapped payloads; return exactly one outcome per payload, in order."""

    async def health(self) -> Health:
        """Check reachability and credentials without sending event data."""
        return Health(ok=True, detail="no health check")

    def counters(self) -> Mapping[str, int]:
        """Destination-specific tallies for /metrics (e.g. events sent without an IP)."""
        return {}

    async def send_test(self, batch: Sequence[Any]) -> TestAnswer:
        """Send through the platform's test mode (Meta ``test_event_code``, GA4 validation
        server) and report its verdict; ``tagless send-test`` calls this. Without a test mode,
        this says so and sends nothing."""
        return TestAnswer(ok=False, status=None, answer=f"{self.name} has no test mode")


class CanonicalJson:
    """Mixin for destinations whose payload is the canonical event itself, every key present.

    Its :meth:`map_stored` skips building the ``Event`` while :meth:`map` is this mixin's own;
    a subclass that overrides :meth:`map` gets its own mapping on both paths.
    """

    def map(self, event: Event) -> dict[str, Any]:
        """The whole canonical event as JSON-ready data, snake_case keys, nothing left out."""
        return codec.to_dict(event, compact=False)

    def map_stored(self, stored: bytes) -> Any:
        if type(self).map is CanonicalJson.map:
            return codec.stored_to_wire(stored)
        return self.map(codec.decode(stored))
