"""Google's answers → outcomes: the classification tables, tested as tables, and body parsing."""

from __future__ import annotations

from typing import Any

import pytest
from fake_data_manager import rpc_error
from fake_google_ads import ads_error, failure

from destinations.google_ads import answers
from destinations.google_ads.answers import (
    DATA_MANAGER_ERRORS,
    GOOGLE_ADS_ERROR_TYPES,
    GOOGLE_ADS_ERRORS,
    ErrorClass,
    GoogleError,
)
from router.destination import Outcome

LATER = 21600.0
#: What each class does to its event: (kind, pause, retry_after).
EXPECTED: dict[str, tuple[str, bool, float | None]] = {
    "retry": ("retry", False, None),
    "throttle": ("retry", True, None),
    "retry_later": ("retry", False, LATER),
    "delivered": ("delivered", False, None),
    "rejected": ("rejected", False, None),
    "pause": ("retry", True, None),
}

GOOGLE_ADS_CASES = [
    # (error family, code, class)
    ("internalError", "INTERNAL_ERROR", "retry"),
    ("internalError", "TRANSIENT_ERROR", "retry"),
    ("internalError", "ERROR_CODE_NOT_PUBLISHED", "retry"),
    ("quotaError", "RESOURCE_EXHAUSTED", "throttle"),
    ("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED", "throttle"),
    ("conversionUploadError", "TOO_RECENT_EVENT", "retry_later"),
    ("conversionUploadError", "TOO_RECENT_CONVERSION_ACTION", "retry_later"),
    ("conversionUploadError", "EVENT_NOT_FOUND", "retry_later"),
    ("conversionUploadError", "CLICK_CONVERSION_ALREADY_EXISTS", "delivered"),
    ("conversionUploadError", "ORDER_ID_ALREADY_IN_USE", "delivered"),
    ("conversionUploadError", "CLICK_NOT_FOUND", "delivered"),
    ("conversionUploadError", "DUPLICATE_ORDER_ID", "retry"),
    ("conversionUploadError", "DUPLICATE_CLICK_CONVERSION_IN_REQUEST", "retry"),
    ("conversionUploadError", "UNPARSEABLE_GCLID", "rejected"),
    ("conversionUploadError", "GBRAID_WBRAID_BOTH_SET", "rejected"),
    ("conversionUploadError", "CONVERSION_PRECEDES_EVENT", "rejected"),
    ("conversionUploadError", "EXPIRED_EVENT", "rejected"),
    ("conversionUploadError", "INVALID_USER_IDENTIFIER", "rejected"),
    ("conversionUploadError", "ORDER_ID_CONTAINS_PII", "rejected"),
    ("conversionUploadError", "NO_CONVERSION_ACTION_FOUND", "pause"),
    ("conversionUploadError", "INVALID_CONVERSION_ACTION_TYPE", "pause"),
    ("conversionUploadError", "UNAUTHORIZED_CUSTOMER", "pause"),
    ("conversionUploadError", "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS", "pause"),
    ("notAllowlistedError", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE", "pause"),
    ("authorizationError", "USER_PERMISSION_DENIED", "pause"),
    ("authorizationError", "DEVELOPER_TOKEN_NOT_APPROVED", "pause"),
    ("authenticationError", "DEVELOPER_TOKEN_INVALID", "pause"),
    ("headerError", "INVALID_LOGIN_CUSTOMER_ID", "pause"),
    ("dateError", "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET", "rejected"),
    ("someNewError", "SOMETHING_NEW", "rejected"),
]

DATA_MANAGER_CASES = [
    ("INTERNAL_ERROR", "retry"),
    ("DEADLINE_EXCEEDED", "retry"),
    ("RESOURCE_EXHAUSTED", "throttle"),
    ("PERMISSION_DENIED", "pause"),
    ("INVALID_CONVERSION_ACTION_ID", "pause"),
    ("INVALID_CONVERSION_ACTION_TYPE", "pause"),
    ("TERMS_AND_CONDITIONS_NOT_SIGNED", "pause"),
    ("DESTINATION_ACCOUNT_ENHANCED_CONVERSIONS_TERMS_NOT_SIGNED", "pause"),
    ("INVALID_FORMAT", "rejected"),
    ("INVALID_SHA256_FORMAT", "rejected"),
    ("NO_IDENTIFIERS_PROVIDED", "rejected"),
    ("INVALID_CURRENCY_CODE", "rejected"),
    ("SOMETHING_NEW", "rejected"),
]


def check(
    error: GoogleError,
    table: dict[str, ErrorClass] | Any,
    families: Any,
    expected: str,
) -> None:
    assert answers.classify(error, table, {}, families) == expected
    outcome = answers.settle([error], table, {}, families, status=200, retry_later_secs=LATER)
    assert (outcome.kind, outcome.pause, outcome.retry_after) == EXPECTED[expected]
    assert outcome.reason == error.code.lower()


@pytest.mark.parametrize(("family", "code", "expected"), GOOGLE_ADS_CASES)
def test_google_ads_error_classes(family: str, code: str, expected: str) -> None:
    """Each Google Ads error code (or, unnamed, its family) has its class and its outcome."""
    check(GoogleError(code, family), GOOGLE_ADS_ERRORS, GOOGLE_ADS_ERROR_TYPES, expected)


@pytest.mark.parametrize(("code", "expected"), DATA_MANAGER_CASES)
def test_data_manager_error_classes(code: str, expected: str) -> None:
    """Each Data Manager ErrorReason has its class and its outcome."""
    check(GoogleError(code), DATA_MANAGER_ERRORS, None, expected)


def test_the_deciding_error_names_the_reason() -> None:
    """A row with a benign and a data error is rejected under the data error's code."""
    errors = [
        GoogleError("CLICK_NOT_FOUND", "conversionUploadError", 0, "no click"),
        GoogleError("UNPARSEABLE_GCLID", "conversionUploadError", 0, "cannot decode"),
    ]
    outcome = answers.settle(
        errors, GOOGLE_ADS_ERRORS, {}, GOOGLE_ADS_ERROR_TYPES, status=200, retry_later_secs=LATER
    )
    assert (outcome.kind, outcome.reason) == ("rejected", "unparseable_gclid")
    assert "CLICK_NOT_FOUND at conversions[0]" in outcome.detail


def test_error_classes_override_the_table() -> None:
    """An operator's error_classes entry wins over the built-in class."""
    error = GoogleError("EVENT_NOT_FOUND", "conversionUploadError")
    overrides: dict[str, ErrorClass] = {"EVENT_NOT_FOUND": "delivered"}
    assert (
        answers.classify(error, GOOGLE_ADS_ERRORS, overrides, GOOGLE_ADS_ERROR_TYPES) == "delivered"
    )


def test_the_worst_error_of_a_row_decides() -> None:
    """A configuration error outranks a data error, which outranks a duplicate."""
    assert answers.worst(["delivered", "rejected"]) == "rejected"
    assert answers.worst(["rejected", "pause", "retry"]) == "pause"
    assert answers.worst(["retry_later", "retry"]) == "retry"


def upload_answer(errors: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"results": results, "jobId": "7"}
    if errors:
        body["partialFailureError"] = failure(errors)
    return body


def outcomes(body: Any, count: int, **options: Any) -> list[Outcome]:
    return answers.click_upload_outcomes(
        body, count, status=200, overrides={}, retry_later_secs=LATER, **options
    )


def test_partial_failure_rows_get_their_own_outcomes() -> None:
    """Rows named in partialFailureError get their class; rows with a result are delivered."""
    body = upload_answer(
        [
            ads_error("conversionUploadError", "TOO_RECENT_EVENT", "too recent", 1),
            ads_error("conversionUploadError", "CLICK_CONVERSION_ALREADY_EXISTS", "dup", 2),
            ads_error("conversionUploadError", "UNPARSEABLE_GCLID", "bad gclid", 3),
        ],
        [{"gclid": "a"}, {}, {}, {}],
    )
    found = outcomes(body, 4)
    assert [(o.kind, o.reason) for o in found] == [
        ("delivered", "ok"),
        ("retry", "too_recent_event"),
        ("delivered", "click_conversion_already_exists"),
        ("rejected", "unparseable_gclid"),
    ]
    assert found[1].retry_after == LATER
    assert "UNPARSEABLE_GCLID at conversions[3]: bad gclid" in found[3].detail


def test_a_row_at_index_zero_without_an_index_key_is_row_zero() -> None:
    """proto3 JSON may omit a zero index: the error still belongs to conversions[0]."""
    error = ads_error("conversionUploadError", "EXPIRED_EVENT", "old", 0)
    del error["location"]["fieldPathElements"][0]["index"]
    found = outcomes(upload_answer([error], [{}, {"gclid": "b"}]), 2)
    assert [o.kind for o in found] == ["rejected", "delivered"]


def test_an_empty_result_without_any_error_is_retried() -> None:
    """A failed row Google explains nowhere is sent again (the order id dedups it)."""
    assert [o.reason for o in outcomes(upload_answer([], [{"gclid": "a"}, {}]), 2)] == [
        "ok",
        "no_result",
    ]


@pytest.mark.parametrize("body", [None, [], {"results": "x"}, {"results": [{}]}])
def test_an_unreadable_success_answer_is_retried(body: Any) -> None:
    """A 2xx without the documented results list proves nothing: every row is retried."""
    assert {o.reason for o in outcomes(body, 2)} == {"unreadable_answer"}


def test_validate_only_answers_pass_rows_without_errors() -> None:
    """validateOnly returns errors only: a row no error names passed."""
    body = {"partialFailureError": failure([ads_error("requestError", "X", "bad", 1)])}
    assert [o.kind for o in outcomes(body, 2, validate_only=True)] == ["delivered", "rejected"]


def test_data_manager_failure_reads_reasons_and_event_indices() -> None:
    """ErrorInfo and field violation reasons, and events[i] from field paths in either case."""
    body = rpc_error(
        400,
        "INVALID_ARGUMENT",
        "bad",
        "INVALID_FORMAT",
        [
            ("events[2].event_timestamp", "INVALID_FORMAT", "not RFC 3339"),
            ("events[0].userData.userIdentifiers[0]", "INVALID_SHA256_FORMAT", "not hex"),
            ("destinations[0]", "INVALID_DESTINATION", "bad"),
        ],
    )["error"]
    found = answers.data_manager_failure(body)
    assert found.reasons == ("INVALID_FORMAT", "INVALID_SHA256_FORMAT", "INVALID_DESTINATION")
    assert sorted(found.events) == [0, 2]
    assert found.events[0][0] == "INVALID_SHA256_FORMAT"
    assert found.events[2][0] == "INVALID_FORMAT"
    assert found.events[2][1].startswith("INVALID_FORMAT at events[2].event_timestamp")
