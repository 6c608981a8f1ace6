"""Platform answers are classified once, by one table; Retry-After is read in both forms."""

from __future__ import annotations

import pytest

from router.http import Response, classify, parse_retry_after


@pytest.mark.parametrize(
    ("status", "kind", "pause"),
    [
        (200, "delivered", False),
        (204, "delivered", False),
        (400, "rejected", False),
        (404, "rejected", False),
        (408, "retry", False),
        (413, "rejected", False),
        (422, "rejected", False),
        (423, "retry", False),
        (401, "retry", True),
        (403, "retry", True),
        (429, "retry", True),
        (500, "retry", False),
        (501, "rejected", False),
        (502, "retry", False),
        (503, "retry", False),
    ],
)
def test_status_classification(status: int, kind: str, pause: bool) -> None:
    """Each status maps to delivered, retry or rejected, and auth/rate limits pause."""
    outcome = classify(Response(status, b'{"error":"x"}'))
    assert (outcome.kind, outcome.pause) == (kind, pause)
    if kind != "delivered":
        assert outcome.reason == f"http_{status}"
        assert outcome.status == status


def test_retry_after_is_carried_on_the_outcome() -> None:
    """A 503 with Retry-After keeps the wait for the outbox."""
    assert classify(Response(503, b"", retry_after=7.0)).retry_after == 7.0


def test_retry_after_seconds_and_http_date() -> None:
    """Retry-After is delay-seconds or an HTTP-date; garbage is ignored."""
    assert parse_retry_after("120") == 120.0
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now=now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_response_excerpt_is_capped() -> None:
    """Only the start of a platform's answer is kept for dead letters."""
    assert len(Response(400, b"x" * 10_000).excerpt) == 2048
