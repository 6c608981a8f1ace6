"""Google's answers classified once: error codes → outcome classes → per-event outcomes.

The two tables below are the policy (destinations/google_ads/README.md explains each line);
``error_classes`` in the config overrides single codes where an operator knows better.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs
import orjson

from router.sdk import Outcome, error_object

#: What an error means for its event:
#: ``retry``: transient, try again with backoff; ``throttle``: quota, rest the destination;
#: ``retry_later``: Google asks for a wait (``retry_later_secs``); ``delivered``: nothing to do
#: (a duplicate of what Google already has, or nothing to attribute); ``rejected``: the event's
#: data is wrong, dead-letter it; ``pause``: the account or its settings are wrong, every event
#: would fail alike, so the destination rests and the events wait for the operator.
ErrorClass = Literal["retry", "throttle", "retry_later", "delivered", "rejected", "pause"]
ERROR_CLASSES: Final = ("retry", "throttle", "retry_later", "delivered", "rejected", "pause")

#: Google Ads API error codes (ConversionUploadError, InternalError, QuotaError, ...).
GOOGLE_ADS_ERRORS: Final[Mapping[str, ErrorClass]] = {
    # retry now: Google says these pass
    "INTERNAL_ERROR": "retry",
    "TRANSIENT_ERROR": "retry",
    "DEADLINE_EXCEEDED": "retry",
    # an in-request duplicate fails the request's copies; sent again apart, the second one
    # meets ORDER_ID_ALREADY_IN_USE / CLICK_CONVERSION_ALREADY_EXISTS below
    "DUPLICATE_ORDER_ID": "retry",
    "DUPLICATE_CLICK_CONVERSION_IN_REQUEST": "retry",
    # quota
    "RESOURCE_EXHAUSTED": "throttle",
    "RESOURCE_TEMPORARILY_EXHAUSTED": "throttle",
    # Google asks to try again in 6 hours
    "TOO_RECENT_EVENT": "retry_later",
    "TOO_RECENT_CONVERSION_ACTION": "retry_later",
    "TOO_RECENT_CALL": "retry_later",
    "EVENT_NOT_FOUND": "retry_later",  # uncertain: may also mean "not from a Google ad"
    # already there, or nothing to attribute (Google: "you can safely ignore")
    "CLICK_CONVERSION_ALREADY_EXISTS": "delivered",
    "ORDER_ID_ALREADY_IN_USE": "delivered",
    "CALL_CONVERSION_ALREADY_EXISTS": "delivered",
    "CLICK_NOT_FOUND": "delivered",
    # the event's data
    "TOO_MANY_CONVERSIONS_IN_REQUEST": "rejected",
    "UNPARSEABLE_GCLID": "rejected",
    "UNPARSEABLE_GBRAID": "rejected",
    "UNPARSEABLE_WBRAID": "rejected",
    "GBRAID_WBRAID_BOTH_SET": "rejected",
    "CONVERSION_PRECEDES_EVENT": "rejected",
    "EXPIRED_EVENT": "rejected",
    "INVALID_USER_IDENTIFIER": "rejected",
    "UNSUPPORTED_USER_IDENTIFIER": "rejected",
    "ORDER_ID_CONTAINS_PII": "rejected",
    "CUSTOM_VARIABLE_VALUE_CONTAINS_PII": "rejected",
    "INVALID_JOB_ID": "rejected",
    "ONE_PER_CLICK_CONVERSION_ACTION_NOT_PERMITTED_WITH_BRAID": "rejected",
    "EXTERNAL_ATTRIBUTION_DATA_SET_FOR_NON_EXTERNALLY_ATTRIBUTED_CONVERSION_ACTION": "rejected",
    # the account or the conversion action
    "NO_CONVERSION_ACTION_FOUND": "pause",
    "INVALID_CONVERSION_ACTION_TYPE": "pause",
    "UNAUTHORIZED_CUSTOMER": "pause",
    "INVALID_CUSTOMER_FOR_CLICK": "pause",
    "CONVERSION_TRACKING_NOT_ENABLED_AT_IMPRESSION_TIME": "pause",
    "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS": "pause",
    "CUSTOMER_NOT_ENABLED_ENHANCED_CONVERSIONS_FOR_LEADS": "pause",
    "CUSTOMER_DATA_POLICY_PROHIBITS_ENHANCED_CONVERSIONS": "pause",
    "CUSTOM_VARIABLE_NOT_ENABLED": "pause",
    "CONVERSION_NOT_COMPLIANT_WITH_ATT_POLICY": "pause",
    "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE": "pause",
    # Tagless never sends external attribution data: the action is set up for a model it
    # does not use
    "EXTERNAL_ATTRIBUTION_DATA_NOT_SET_FOR_EXTERNALLY_ATTRIBUTED_CONVERSION_ACTION": "pause",
    "ORDER_ID_NOT_PERMITTED_FOR_EXTERNALLY_ATTRIBUTED_CONVERSION_ACTION": "pause",
    "EXTERNALLY_ATTRIBUTED_CONVERSION_ACTION_NOT_PERMITTED_WITH_USER_IDENTIFIER": "pause",
}
#: Whole error families of the Google Ads API, for codes the table above does not name.
GOOGLE_ADS_ERROR_TYPES: Final[Mapping[str, ErrorClass]] = {
    "internalError": "retry",
    "quotaError": "throttle",
    "authenticationError": "pause",
    "authorizationError": "pause",
    "headerError": "pause",
    "notAllowlistedError": "pause",
}

#: Data Manager API ``ErrorReason`` values (error.proto of google.ads.datamanager.v1).
DATA_MANAGER_ERRORS: Final[Mapping[str, ErrorClass]] = {
    "INTERNAL_ERROR": "retry",
    "DEADLINE_EXCEEDED": "retry",
    "RESOURCE_EXHAUSTED": "throttle",
    "PERMISSION_DENIED": "pause",
    "NOT_FOUND": "pause",
    "INVALID_DESTINATION": "pause",
    "INVALID_CONVERSION_ACTION_ID": "pause",
    "INVALID_CONVERSION_ACTION_TYPE": "pause",
    "TERMS_AND_CONDITIONS_NOT_SIGNED": "pause",
    "DESTINATION_ACCOUNT_NOT_ENABLED_ENHANCED_CONVERSIONS_FOR_LEADS": "pause",
    "DESTINATION_ACCOUNT_DATA_POLICY_PROHIBITS_ENHANCED_CONVERSIONS": "pause",
    "DESTINATION_ACCOUNT_ENHANCED_CONVERSIONS_TERMS_NOT_SIGNED": "pause",
    "INVALID_ARGUMENT": "rejected",
    "REQUIRED_FIELD_MISSING": "rejected",
    "INVALID_FORMAT": "rejected",
    "INVALID_HEX_ENCODING": "rejected",
    "INVALID_SHA256_FORMAT": "rejected",
    "INVALID_POSTAL_CODE": "rejected",
    "INVALID_COUNTRY_CODE": "rejected",
    "INVALID_ENUM_VALUE": "rejected",
    "INVALID_NUMBER_FORMAT": "rejected",
    "INVALID_CURRENCY_CODE": "rejected",
    "INVALID_EVENT": "rejected",
    "NO_IDENTIFIERS_PROVIDED": "rejected",
    "TOO_MANY_USER_IDENTIFIERS": "rejected",
    "TOO_MANY_EVENTS": "rejected",
}

#: Which class wins when one event has several errors: the one needing most attention.
_PRECEDENCE: Final = ("pause", "rejected", "throttle", "retry", "retry_later", "delivered")
MAX_DETAIL: Final = 500
_EVENT_INDEX: Final = re.compile(r"^events\[(\d+)\]")


@attrs.frozen
class GoogleError:
    """One error of an answer: its code, its family, which row it names, what it says."""

    code: str
    family: str = ""
    index: int | None = None
    message: str = ""

    def describe(self) -> str:
        where = f" at conversions[{self.index}]" if self.index is not None else ""
        return f"{self.code}{where}: {self.message}"


def classify(
    error: GoogleError,
    table: Mapping[str, ErrorClass],
    overrides: Mapping[str, ErrorClass],
    families: Mapping[str, ErrorClass] | None = None,
) -> ErrorClass:
    """The class of one error: the operator's override, the code, the family, else rejected.

    An error no table names is a data error: it is dead-lettered with its code, never retried
    in a loop.
    """
    found = overrides.get(error.code) or table.get(error.code)
    if found is None and families is not None:
        found = families.get(error.family)
    return found or "rejected"


def worst(classes: Iterable[ErrorClass]) -> ErrorClass:
    """The class that decides for an event with several errors."""
    return min(classes, key=_PRECEDENCE.index)


def settle(
    errors: Sequence[GoogleError],
    table: Mapping[str, ErrorClass],
    overrides: Mapping[str, ErrorClass],
    families: Mapping[str, ErrorClass] | None = None,
    *,
    status: int | None,
    retry_later_secs: float,
    retry_after: float | None = None,
) -> Outcome:
    """The outcome of an event with these errors: its most serious error decides and names
    the reason; the detail lists them all."""
    classes = [classify(error, table, overrides, families) for error in errors]
    kind = worst(classes)
    reason = errors[classes.index(kind)].code.lower()
    detail = "; ".join(e.describe() for e in errors)[:MAX_DETAIL]
    if kind == "delivered":
        return Outcome("delivered", reason, status, detail=detail)
    if kind == "rejected":
        return Outcome("rejected", reason, status, detail=detail)
    if kind == "retry_later":
        return Outcome("retry", reason, status, retry_later_secs, detail, event_delay=True)
    pause = kind in ("pause", "throttle")
    return Outcome("retry", reason, status, retry_after, detail, pause=pause)


# -- reading Google's bodies -------------------------------------------------------------------


def loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def ads_failure_errors(status: Any) -> list[GoogleError]:
    """The errors of a ``google.rpc.Status`` whose details hold a ``GoogleAdsFailure``.

    Used for ``partialFailureError`` (per-row errors, each locating its row as
    ``location.fieldPathElements[0] = {fieldName: conversions, index: i}``) and for the
    ``error`` of a failed request.
    """
    if not isinstance(status, dict):
        return []
    found: list[GoogleError] = []
    for detail in _dicts(status.get("details")):
        for error in _dicts(detail.get("errors")):
            code, family = _error_code(error.get("errorCode"))
            index = _row_index(error.get("location"))
            found.append(GoogleError(code, family, index, str(error.get("message", ""))))
    return found


def _error_code(value: Any) -> tuple[str, str]:
    """``{"conversionUploadError": "TOO_RECENT_EVENT"}`` → ``("TOO_RECENT_EVENT", family)``."""
    if isinstance(value, dict):
        for family, code in value.items():
            if isinstance(code, str):
                return code, family
    return "UNKNOWN", ""


def _row_index(location: Any) -> int | None:
    if not isinstance(location, dict):
        return None
    for element in _dicts(location.get("fieldPathElements")):
        if element.get("fieldName") == "conversions":
            index = element.get("index", 0)  # proto3 JSON may leave a zero index out
            return int(index) if isinstance(index, int | str) and str(index).isdigit() else None
    return None


#: The ``error`` object of a Google API error answer, or None if the body is not one.
rpc_error = error_object


@attrs.frozen
class DataManagerFailure:
    """A failed ``events:ingest`` request: its reasons, and the events it names (fast-fail)."""

    status: str
    message: str
    reasons: tuple[str, ...]
    #: Event index → (its reason, what the violation says), for the events the answer names.
    events: Mapping[int, tuple[str, str]]

    def errors(self) -> list[GoogleError]:
        codes = self.reasons or (self.status or "UNKNOWN",)
        return [GoogleError(code, message=self.message) for code in codes]


def data_manager_failure(error: dict[str, Any]) -> DataManagerFailure:
    """Reasons from ``ErrorInfo`` and ``BadRequest`` details; event indices from field paths.

    A field violation's ``field`` is read as ``events[i]...`` (either case); a violation that
    names no event leaves the failure unattributed, and the client isolates it by halving.
    """
    reasons: list[str] = []
    events: dict[int, tuple[str, str]] = {}
    for detail in _dicts(error.get("details")):
        reason = detail.get("reason")
        if isinstance(reason, str) and reason:
            reasons.append(reason)
        for violation in _dicts(detail.get("fieldViolations")):
            why = violation.get("reason")
            if isinstance(why, str) and why:
                reasons.append(why)
            field = str(violation.get("field", ""))
            found = _EVENT_INDEX.match(field)
            if found is not None and int(found.group(1)) not in events:
                code = why if isinstance(why, str) and why else "INVALID_ARGUMENT"
                text = f"{code} at {field}: {violation.get('description', '')}"
                events[int(found.group(1))] = (code, text[:MAX_DETAIL])
    unique = tuple(dict.fromkeys(reasons))
    return DataManagerFailure(
        str(error.get("status", "")), str(error.get("message", ""))[:MAX_DETAIL], unique, events
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def click_upload_outcomes(
    answer: Any,
    count: int,
    *,
    status: int,
    overrides: Mapping[str, ErrorClass],
    retry_later_secs: float,
    validate_only: bool = False,
) -> list[Outcome]:
    """One outcome per conversion of a 2xx ``uploadClickConversions`` answer.

    A row named by an error of ``partialFailureError`` takes the class of its worst error;
    a row with a (non-empty) result is delivered; Google leaves a failed row's result empty.
    ``validateOnly`` answers carry errors only, so there a row without an error passed.
    """
    if not isinstance(answer, dict):
        return [Outcome("retry", "unreadable_answer", status)] * count
    by_row: dict[int, list[GoogleError]] = {}
    loose: list[GoogleError] = []
    for error in ads_failure_errors(answer.get("partialFailureError")):
        if error.index is not None and 0 <= error.index < count:
            by_row.setdefault(error.index, []).append(error)
        else:
            loose.append(error)
    results = answer.get("results")
    if not validate_only and not (isinstance(results, list) and len(results) == count):
        if not by_row and not loose:
            detail = f"expected {count} results, got {answer.get('results')!r}"[:MAX_DETAIL]
            return [Outcome("retry", "unreadable_answer", status, detail=detail)] * count
        results = [{}] * count
    outcomes: list[Outcome] = []
    for row in range(count):
        errors = by_row.get(row) or ([] if _has_result(results, row, validate_only) else loose)
        if not errors:
            if _has_result(results, row, validate_only):
                outcomes.append(Outcome("delivered", "ok", status))
            else:
                outcomes.append(
                    Outcome("retry", "no_result", status, detail="empty result, no error")
                )
            continue
        outcomes.append(
            settle(
                errors,
                GOOGLE_ADS_ERRORS,
                overrides,
                GOOGLE_ADS_ERROR_TYPES,
                status=status,
                retry_later_secs=retry_later_secs,
            )
        )
    return outcomes


def _has_result(results: Any, row: int, validate_only: bool) -> bool:
    if validate_only:
        return True
    return isinstance(results, list) and row < len(results) and bool(results[row])
