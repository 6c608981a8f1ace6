"""BigQuery's answers classified once: ``insertErrors`` per row, Google API errors per request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from router.sdk import DELIVERED, Outcome, Response, classify, error_object

#: Row error reasons that say nothing is wrong with the row: send it again (same insertId).
#: ``stopped``: the row was fine but not inserted because another row of the request failed.
RETRY_ROW_REASONS: Final = {
    "stopped": "row_stopped",
    "backendError": "row_backend_error",
    "internalError": "row_internal_error",
    "timeout": "row_timeout",
    "rateLimitExceeded": "row_rate_limited",
    "quotaExceeded": "row_quota_exceeded",
}
#: Request errors that no event can get past until the operator acts (or the quota refills):
#: the destination pauses and the events wait, instead of being dead-lettered one by one.
PAUSE_REASONS: Final = {
    "accessDenied": "access_denied",
    "notFound": "table_not_found",
    "rateLimitExceeded": "rate_limited",
    "quotaExceeded": "quota_exceeded",
    "billingNotEnabled": "billing_not_enabled",
    "accessDeniedBilling": "billing_not_enabled",
}
MAX_DETAIL: Final = 500


#: The ``error`` object of Google's JSON error shape, or None if the body is not one.
google_error = error_object


def error_reason(error: Mapping[str, Any]) -> str:
    """The first ``errors[].reason`` (``notFound``, ``accessDenied``...), or ``status``."""
    for item in error.get("errors") or ():
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            return str(item["reason"])
    return str(error.get("status", ""))


def request_outcome(response: Response, table: str) -> Outcome:
    """The outcome of every row of a request BigQuery refused as a whole."""
    error = google_error(response.body)
    if error is None:
        return classify(response)
    reason = error_reason(error)
    detail = f"HTTP {response.status} {reason}: {error.get('message', '')}"[:MAX_DETAIL]
    if reason in PAUSE_REASONS and response.status in (403, 404, 429):
        if reason == "notFound":
            detail += f" (does {table} exist? `tagless bigquery create-table` creates it)"
        return Outcome(
            "retry",
            PAUSE_REASONS[reason],
            response.status,
            response.retry_after,
            detail,
            pause=True,
        )
    if response.status in (400, 413):
        # one row can spoil a request (too large, or malformed): split to isolate it
        code = f"http_{response.status}_{reason}"
        return Outcome("rejected", code, response.status, detail=detail, whole_batch=True)
    outcome = classify(response)
    return Outcome(
        outcome.kind,
        outcome.reason,
        outcome.status,
        outcome.retry_after,
        detail,
        pause=outcome.pause,
    )


def row_outcomes(response: Response, count: int) -> list[Outcome]:
    """One outcome per row of a 200 answer: delivered unless ``insertErrors`` names the row."""
    try:
        answer = orjson.loads(response.body) if response.body.strip() else {}
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("insertErrors", []), list):
        # which rows went in is unknown: send them all again, insertId deduplicates
        unreadable = Outcome("retry", "answer_unreadable", response.status, detail=response.excerpt)
        return [unreadable] * count
    outcomes = [DELIVERED] * count
    for entry in answer.get("insertErrors", []):
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, int) and 0 <= index < count:
            errors = entry.get("errors")
            outcomes[index] = row_outcome(errors if isinstance(errors, list) else [])
    return outcomes


def row_outcome(errors: Sequence[Any]) -> Outcome:
    """A row BigQuery did not insert: ``invalid`` is the row's fault (dead letter), the
    transient reasons retry, anything else is dead-lettered with its reason (replayable)."""
    found = [error for error in errors if isinstance(error, dict)]
    reasons = [str(error.get("reason", "")) for error in found]
    detail = "; ".join(_describe(error) for error in found)[:MAX_DETAIL]
    if "invalid" in reasons:
        return Outcome("rejected", "invalid_row", detail=detail)
    if reasons and all(reason in RETRY_ROW_REASONS for reason in reasons):
        return Outcome("retry", RETRY_ROW_REASONS[reasons[0]], detail=detail)
    unknown = next((reason for reason in reasons if reason not in RETRY_ROW_REASONS), "")
    return Outcome("rejected", "row_error", detail=f"{unknown or 'no reason given'}: {detail}")


def _describe(error: Mapping[str, Any]) -> str:
    where = f" at {error['location']}" if error.get("location") else ""
    return f"{error.get('reason', '?')}{where}: {error.get('message', '')}"
