"""When to try again: exponential backoff with full jitter, bounded by attempts and by age."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from router.destination import Outcome


@attrs.frozen
class Decision:
    """Retry at ``due_at``, or give up with ``reason`` (``due_at`` is then None)."""

    due_at: float | None
    reason: str = ""


@attrs.frozen
class RetryPolicy:
    """Retry schedule of one destination.

    Delay after attempt *n* (1-based) is uniform in [0, min(max_backoff, initial * 2**(n-1))]
    (full jitter, so failing clients do not retry in step), unless the platform said how long to
    wait (``Retry-After``), which wins up to ``max_pause_secs``: a platform asking for a day is
    probed again when the cap ends (the dispatcher rests the whole destination as long). An event
    is given up when it has been tried ``max_attempts`` times or when its next try would fall
    after ``max_age_secs`` from receipt (the platform's own age limit caps this: Meta 7 days,
    GA4 72 hours). A platform's wait alone never gives an event up: when it would carry the next
    try past that age, the try is moved to the last moment inside it.

    A try that paused the whole destination (rate limited, credentials refused: see
    :meth:`attempts_after`) is the platform's state, not the event's fault, so it spends none of
    the event's ``max_attempts``; ``max_age_secs`` still bounds how long such an event waits.
    """

    max_attempts: int = 8
    max_age_secs: float = 86_400.0
    initial_backoff_secs: float = 1.0
    max_backoff_secs: float = 300.0
    #: The longest a platform's ``Retry-After`` (or an outage) rests a destination.
    max_pause_secs: float = 300.0
    jitter: Callable[[float], float] = attrs.field(default=lambda top: random.uniform(0, top))  # noqa: S311 - jitter, not crypto

    def backoff(self, attempts: int) -> float:
        """The randomised delay after ``attempts`` failed tries."""
        top = min(self.max_backoff_secs, self.initial_backoff_secs * 2 ** max(0, attempts - 1))
        return self.jitter(top)

    def capped_wait(self, retry_after: float) -> float:
        """How long a platform's ``Retry-After`` is honoured: at most ``max_pause_secs``."""
        return min(retry_after, self.max_pause_secs)

    @staticmethod
    def attempts_after(attempts: int, outcome: Outcome) -> int:
        """The attempts an event has spent once ``outcome`` is recorded after ``attempts``.

        An outcome that pauses the whole destination (429, 401/403) costs no attempt.
        """
        return attempts if outcome.kind == "retry" and outcome.pause else attempts + 1

    def decide(
        self,
        *,
        attempts: int,
        received_at: float,
        now: float,
        retry_after: float | None,
        event_delay: bool = False,
    ) -> Decision:
        """What to do after a failed try, with ``attempts`` spent (see :meth:`attempts_after`).

        ``event_delay``: ``retry_after`` is a wait the platform set for this event alone, not
        for the destination, so ``max_pause_secs`` does not shorten it.
        """
        if attempts >= self.max_attempts:
            return Decision(None, f"gave up after {attempts} attempts")
        too_old = Decision(None, f"older than {self.max_age_secs:g}s before it could be retried")
        deadline = received_at + self.max_age_secs
        if retry_after is None:
            due_at = now + self.backoff(attempts)
            return too_old if due_at > deadline else Decision(due_at)
        if now >= deadline:
            return too_old
        wait = retry_after if event_delay else self.capped_wait(retry_after)
        return Decision(min(now + wait, deadline))
