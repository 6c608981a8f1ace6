"""Backoff is exponential with full jitter, capped, and bounded by attempts and age."""

from __future__ import annotations

from router.destination import Outcome
from router.outbox.policy import RetryPolicy


def test_backoff_doubles_up_to_the_cap_before_jitter() -> None:
    """Without jitter the delays are 1, 2, 4 ... capped at max_backoff_secs."""
    policy = RetryPolicy(initial_backoff_secs=1, max_backoff_secs=10, jitter=lambda top: top)
    assert [policy.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    """The jitter function receives the ceiling and its draw is the delay."""
    tops: list[float] = []
    policy = RetryPolicy(jitter=lambda top: tops.append(top) or top / 2)
    assert policy.backoff(3) == 2.0
    assert tops == [4.0]


def test_retry_after_wins_over_backoff() -> None:
    """A platform's own wait replaces the computed backoff."""
    decision = RetryPolicy().decide(attempts=1, received_at=0, now=100, retry_after=30)
    assert decision.due_at == 130


def test_attempts_bound() -> None:
    """At max_attempts the event is given up with a reason."""
    decision = RetryPolicy(max_attempts=3).decide(
        attempts=3, received_at=0, now=0, retry_after=None
    )
    assert decision.due_at is None and "3 attempts" in decision.reason


def test_age_bound() -> None:
    """A retry that would fall after max_age_secs from receipt is given up instead."""
    policy = RetryPolicy(max_age_secs=100, jitter=lambda top: top)
    assert policy.decide(attempts=1, received_at=0, now=50, retry_after=None).due_at == 51
    late = policy.decide(attempts=1, received_at=0, now=99.5, retry_after=None)
    assert late.due_at is None and "older than 100s" in late.reason


def test_a_platform_wait_is_capped_at_max_pause_secs() -> None:
    """A Retry-After of 100,000 s schedules the next try when max_pause_secs ends."""
    policy = RetryPolicy(max_pause_secs=300)
    assert policy.decide(attempts=1, received_at=0, now=10, retry_after=100_000).due_at == 310
    assert policy.decide(attempts=1, received_at=0, now=10, retry_after=20).due_at == 30


def test_a_platform_wait_never_dead_letters_an_event_with_time_left() -> None:
    """A wait that would carry the next try past max_age_secs moves it to the last moment
    inside the age limit instead of giving the event up."""
    policy = RetryPolicy(max_age_secs=1000, max_pause_secs=300)
    decision = policy.decide(attempts=1, received_at=0, now=900, retry_after=100_000)
    assert decision.due_at == 1000


def test_an_event_past_its_age_is_given_up_whatever_the_platform_asked() -> None:
    """An event already at max_age_secs is given up, with or without a Retry-After."""
    policy = RetryPolicy(max_age_secs=1000)
    late = policy.decide(attempts=1, received_at=0, now=1000, retry_after=5)
    assert late.due_at is None and "older than 1000s" in late.reason


def test_a_try_that_paused_the_destination_spends_no_attempt() -> None:
    """Rate limited or refused credentials (pause) cost no attempt; any other failure costs one."""
    policy = RetryPolicy()
    assert policy.attempts_after(3, Outcome("retry", "http_429", 429, pause=True)) == 3
    assert policy.attempts_after(3, Outcome("retry", "http_503", 503, retry_after=5)) == 4
    assert policy.attempts_after(3, Outcome("rejected", "http_400", 400)) == 4
