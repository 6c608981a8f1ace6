"""When to try again: exponential backoff with full jitter, bounded by attempts and by age."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs


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
    wait (``Retry-After``), which wins. An event is given up when it has been tried
    ``max_attempts`` times or when its next try would fall after ``max_age_secs`` from receipt
    (the platform's own age limit caps this: Meta 7 days, GA4 72 hours).
    """

    max_attempts: int = 8
    max_age_secs: float = 86_400.0
    initial_backoff_secs: float = 1.0
    max_backoff_secs: float = 300.0
    jitter: Callable[[float], float] = attrs.field(default=lambda top: random.uniform(0, top))  # noqa: S311 - jitter, not crypto

    def backoff(self, attempts: int) -> float:
        """The randomised delay after ``attempts`` failed tries."""
        top = min(self.max_backoff_secs, self.initial_backoff_secs * 2 ** max(0, attempts - 1))
        return self.jitter(top)

    def decide(
        self, *, attempts: int, received_at: float, now: float, retry_after: float | None
    ) -> Decision:
        """What to do after the ``attempts``-th failed try of an event."""
        if attempts >= self.max_attempts:
            return Decision(None, f"gave up after {attempts} attempts")
        delay = retry_after if retry_after is not None else self.backoff(attempts)
        due_at = now + delay
        if due_at - received_at > self.max_age_secs:
            return Decision(None, f"older than {self.max_age_secs:g}s before it could be retried")
        return Decision(due_at)
