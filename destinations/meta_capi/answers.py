"""Meta's answers classified once: Graph error codes and HTTP statuses → outcomes."""

from __future__ import annotations

from typing import Any, Final

import orjson

from router.sdk import DELIVERED, Outcome, Response, classify, error_object

#: Graph codes worth retrying with backoff: unknown/transient, service down.
TRANSIENT_CODES: Final = frozenset({1, 2})
#: Throttling codes: every event would fail the same way, so the destination rests.
THROTTLE_CODES: Final = frozenset({4, 17, 341, 613})
#: "Temporarily blocked": retried after a long wait.
BLOCKED_CODE: Final = 368
BLOCKED_WAIT_SECS: Final = 3600.0
#: Invalid parameter (a bad field, an event too old, a bad hash): one event spoils the request.
INVALID_PARAMETER: Final = 100
#: The token is expired or invalid: waits for the operator, never dead-letters events.
INVALID_TOKEN: Final = 190
#: Where the answer's message is cut for the dead-letter record.
MAX_DETAIL: Final = 500


#: The ``error`` object of a Graph error answer, or None if the body is not one.
graph_error = error_object


def is_permission_code(code: int) -> bool:
    """Graph permission errors: 10 and 200-299."""
    return code == 10 or 200 <= code <= 299


def describe(error: dict[str, Any], secret: str) -> str:
    """``code/subcode type: message (fbtrace_id)``, cut short, with the token scrubbed."""
    subcode = error.get("error_subcode")
    code = f"{error.get('code')}" + (f"/{subcode}" if subcode is not None else "")
    message = str(error.get("error_user_msg") or error.get("message") or "")
    text = f"{code} {error.get('type', '')}: {message} (fbtrace_id {error.get('fbtrace_id')})"
    if secret:
        text = text.replace(secret, "***")
    return text[:MAX_DETAIL]


def classify_error(
    status: int, error: dict[str, Any], detail: str, retry_after: float | None
) -> Outcome | None:
    """The outcome for a Graph error code, or None when the code is not in the table."""
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    reason = f"meta_{code}"
    if code in TRANSIENT_CODES:
        return Outcome("retry", reason, status, retry_after, detail)
    if code in THROTTLE_CODES:
        return Outcome("retry", reason, status, retry_after, detail, pause=True)
    if code == BLOCKED_CODE:
        return Outcome("retry", reason, status, retry_after or BLOCKED_WAIT_SECS, detail, True)
    if code == INVALID_PARAMETER:
        return Outcome("rejected", reason, status, None, detail, whole_batch=True)
    if code == INVALID_TOKEN or is_permission_code(code):
        return Outcome("retry", reason, status, retry_after, detail, pause=True)
    if error.get("is_transient") is True:
        return Outcome("retry", reason, status, retry_after, detail)
    return None


def classify_failure(response: Response, secret: str) -> Outcome:
    """A non-2xx answer: the Graph code decides, else the shared HTTP status policy.

    Meta refuses a request as a whole, so any permanent answer is a ``whole_batch``
    rejection: the dispatcher splits the batch until the bad event is alone.
    """
    error = graph_error(response.body)
    if error is not None:
        detail = describe(error, secret)
        outcome = classify_error(response.status, error, detail, response.retry_after)
        if outcome is not None:
            return outcome
    else:
        detail = response.excerpt.replace(secret, "***") if secret else response.excerpt
    shared = classify(response)
    if shared.kind == "rejected":
        return Outcome("rejected", shared.reason, shared.status, None, detail, whole_batch=True)
    return Outcome(
        shared.kind, shared.reason, shared.status, shared.retry_after, detail, shared.pause
    )


def events_received(body: bytes) -> int | None:
    """``events_received`` of a success answer, or None if the answer does not say."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    count = data.get("events_received") if isinstance(data, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def classify_success(response: Response, sent: int) -> Outcome:
    """A 2xx is delivery only when Meta counts every event sent (``events_received``)."""
    count = events_received(response.body)
    if count is None:
        # A 2xx we cannot read (a proxy?) proves nothing; a re-send dedups on event_id.
        return Outcome("retry", "unreadable_answer", response.status, None, response.excerpt)
    if count == sent:
        return DELIVERED
    detail = f"events_received {count} of {sent}"
    return Outcome("rejected", "events_missing", response.status, None, detail, whole_batch=True)


def classify_answer(response: Response, sent: int, secret: str) -> Outcome:
    """The outcome shared by every event of one request."""
    if 200 <= response.status < 300:
        return classify_success(response, sent)
    return classify_failure(response, secret)
