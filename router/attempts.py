"""Delivery attempts as records, and the sinks (an audit table) that receive a store's attempts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from router.clock import Clock

AttemptState = Literal["delivered", "retry", "dead"]


@attrs.frozen(slots=True)
class Attempt:
    """One try of one event at one destination, as it was settled.

    ``attempt`` is the count of attempts the event has spent there after this try (what the
    dispatcher's logs say): a try that paused the whole destination (429, 401/403) spends
    none, so it repeats the number of the try before it; a replayed dead letter starts again
    at 1. ``status`` and ``latency_ms`` are None when nothing was sent (a mapping error).
    """

    store: str
    destination: str
    destination_type: str
    event_id: str
    attempt: int
    outcome: AttemptState
    status: int | None
    reason: str
    latency_ms: float | None
    #: Unix seconds: when the request carrying the event went out (or when it was settled,
    #: when nothing was sent).
    attempted_at: float


#: Called by a dispatcher for every settled try; must return at once (it never awaits).
AttemptObserver = Callable[[Attempt], None]


class AttemptSink(Protocol):
    """Takes the attempts of its store's other destinations and writes them somewhere.

    :meth:`observe` must never block nor raise for load: it buffers; the writing happens in the
    sink's own task, started by :meth:`start` and ended by :meth:`close`, which writes what is
    still buffered within ``grace_secs``.
    """

    def observe(self, attempt: Attempt) -> None: ...

    def start(self) -> None: ...

    async def close(self, grace_secs: float) -> None: ...


@runtime_checkable
class AuditsAttempts(Protocol):
    """A destination that can also receive attempts (e.g. ``bigquery`` with ``audit_table``)."""

    def attempt_sink(self, clock: Clock) -> AttemptSink | None:
        """The sink for this instance's config, or None when its config asks for none."""


Lane = tuple[str, str]


def attempt_sinks(instances: Mapping[Lane, Any], clock: Clock) -> dict[Lane, AttemptSink]:
    """The sink of every destination instance that has one, by (store, destination id)."""
    found: dict[Lane, AttemptSink] = {}
    for lane, destination in instances.items():
        if isinstance(destination, AuditsAttempts):
            sink = destination.attempt_sink(clock)
            if sink is not None:
                found[lane] = sink
    return found


def observer_for(sinks: Mapping[Lane, AttemptSink], lane: Lane) -> AttemptObserver | None:
    """What the dispatcher of ``lane`` tells its attempts to: every sink of the same store but
    its own (an audit table records the other destinations, not itself); None when there is none."""
    store, destination = lane
    targets = [s.observe for (st, d), s in sinks.items() if st == store and d != destination]
    if not targets:
        return None
    if len(targets) == 1:
        return targets[0]
    return _fan_out(targets)


def _fan_out(targets: Sequence[AttemptObserver]) -> AttemptObserver:
    def observe(attempt: Attempt) -> None:
        for target in targets:
            target(attempt)

    return observe
