"""How each Meta answer (Graph error code or HTTP status) becomes an outcome."""

from __future__ import annotations

import orjson
import pytest
from fake_meta import graph_error

from destinations.meta_capi.answers import classify_answer
from router.http import Response

TOKEN = "EAAB-secret"

# code → (kind, pause, whole_batch, retry_after)
GRAPH_CODES = [
    (1, "retry", False, False, None),
    (2, "retry", False, False, None),
    (4, "retry", True, False, None),
    (17, "retry", True, False, None),
    (341, "retry", True, False, None),
    (613, "retry", True, False, None),
    (368, "retry", True, False, 3600.0),
    (100, "rejected", False, True, None),
    (190, "retry", True, False, None),
    (10, "retry", True, False, None),
    (200, "retry", True, False, None),
    (294, "retry", True, False, None),
]


@pytest.mark.parametrize(("code", "kind", "pause", "whole_batch", "retry_after"), GRAPH_CODES)
def test_graph_error_codes(
    code: int, kind: str, pause: bool, whole_batch: bool, retry_after: float | None
) -> None:
    """Each Graph error code of the README's answer table maps to its row of the retry table."""
    body = orjson.dumps(graph_error(code, "something"))
    outcome = classify_answer(Response(400, body), 3, TOKEN)
    assert (outcome.kind, outcome.pause, outcome.whole_batch) == (kind, pause, whole_batch)
    assert (outcome.reason, outcome.status, outcome.retry_after) == (
        f"meta_{code}",
        400,
        retry_after,
    )


# status, body → (kind, pause, whole_batch, reason)
HTTP_ANSWERS = [
    (200, {"events_received": 3, "messages": []}, "delivered", False, False, "ok"),
    (200, {"events_received": 2, "messages": []}, "rejected", False, True, "events_missing"),
    (200, b"<html>proxy</html>", "retry", False, False, "unreadable_answer"),
    (500, b"oops", "retry", False, False, "http_500"),
    (503, {"error": {"message": "down"}}, "retry", False, False, "http_503"),
    (429, b"", "retry", True, False, "http_429"),
    (401, b"", "retry", True, False, "http_401"),
    (404, b"not found", "rejected", False, True, "http_404"),
    (400, {"error": {"code": 9999, "message": "new"}}, "rejected", False, True, "http_400"),
    (400, {"error": {"code": 9999, "is_transient": True}}, "retry", False, False, "meta_9999"),
]


@pytest.mark.parametrize(("status", "body", "kind", "pause", "whole_batch", "reason"), HTTP_ANSWERS)
def test_http_answers(
    status: int, body: object, kind: str, pause: bool, whole_batch: bool, reason: str
) -> None:
    """Without a known Graph code the HTTP status decides; 4xx always rejects the whole batch."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    outcome = classify_answer(Response(status, raw), 3, TOKEN)
    assert (outcome.kind, outcome.pause, outcome.whole_batch, outcome.reason) == (
        kind,
        pause,
        whole_batch,
        reason,
    )


def test_detail_is_short_and_never_holds_the_token() -> None:
    """The dead-letter detail keeps code, message and trace id, cut short, token scrubbed."""
    body = orjson.dumps(graph_error(100, f"bad token {TOKEN} " + "x" * 2000, subcode=2804003))
    outcome = classify_answer(Response(400, body), 1, TOKEN)
    assert outcome.detail.startswith("100/2804003 OAuthException: bad token *** x")
    assert TOKEN not in outcome.detail
    assert len(outcome.detail) <= 500


def test_retry_after_header_is_kept() -> None:
    """A Retry-After on a throttling answer is the wait the dispatcher rests for."""
    body = orjson.dumps(graph_error(613, "rate limited"))
    outcome = classify_answer(Response(400, body, retry_after=120.0), 5, TOKEN)
    assert (outcome.kind, outcome.pause, outcome.retry_after) == ("retry", True, 120.0)
