"""A fake Google Ads API enforcing the documented ``uploadClickConversions`` rules (README.md).

Partial failure like Google: a 200 whose ``results`` hold an empty object for each failed row
and whose ``partialFailureError`` carries a ``GoogleAdsFailure`` locating each error at
``conversions[i]``. ``row_errors`` scripts a Google error code for a click id or order id.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from typing import Any, Final

import orjson

from router.testing.fake_platform import Answer, FakePlatform, Recorded

CUSTOMER: Final = "1234567890"
MANAGER: Final = "1112223333"
DEV_TOKEN: Final = "dev-token-123"
VERSION: Final = "v26"
ACTIONS: Final = frozenset({"987654321", "987654322"})
MAX_CONVERSIONS: Final = 2000
MAX_IDENTIFIERS: Final = 5
ADS_TIME: Final = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d")
ACTION: Final = re.compile(rf"customers/{CUSTOMER}/conversionActions/(\d+)")
HEX64: Final = re.compile(r"[0-9a-f]{64}")
CLICK_IDS: Final = ("gclid", "gbraid", "wbraid")
FAILURE_TYPE: Final = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"
RowError = tuple[str, str, str]  # family, code, message


def ads_error(family: str, code: str, message: str, row: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"errorCode": {family: code}, "message": message}
    if row is not None:
        error["location"] = {"fieldPathElements": [{"fieldName": "conversions", "index": row}]}
    return error


def failure(errors: list[dict[str, Any]], *, code: int = 3, status: str = "") -> dict[str, Any]:
    """A ``google.rpc.Status`` holding one ``GoogleAdsFailure``, as REST JSON."""
    first = errors[0]
    where = ""
    if "location" in first:
        where = f", at conversions[{first['location']['fieldPathElements'][0].get('index', 0)}]"
    body: dict[str, Any] = {
        "code": code,
        "message": f"Multiple errors in 'details'. First error: {first['message']}{where}",
        "details": [{"@type": FAILURE_TYPE, "errors": errors, "requestId": "fake-request"}],
    }
    if status:
        body["status"] = status
    return body


def request_error(http: int, status: str, errors: list[dict[str, Any]]) -> Answer:
    return Answer(http, {"error": failure(errors, code=http, status=status)})


class FakeGoogleAds:
    """The responder of a :class:`FakePlatform` that speaks the Google Ads API REST."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.validated: list[dict[str, Any]] = []
        self.row_errors: dict[str, RowError] = {}
        self.revoked: set[str] = set()
        self._orders: set[tuple[str, str]] = set()
        self._jobs = itertools.count(1)
        self.platform = FakePlatform(responder=self)

    @property
    def requests(self) -> list[Recorded]:
        return self.platform.requests

    @property
    def upload_path(self) -> str:
        return f"/{VERSION}/customers/{CUSTOMER}:uploadClickConversions"

    def __call__(self, seen: Recorded) -> Answer:
        token = seen.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token or token in self.revoked:
            unauthenticated = {
                "code": 401,
                "message": "invalid credentials",
                "status": "UNAUTHENTICATED",
            }
            return Answer(401, {"error": unauthenticated})
        if seen.headers.get("developer-token") != DEV_TOKEN:
            error = ads_error(
                "authenticationError", "DEVELOPER_TOKEN_INVALID", "bad developer token"
            )
            return request_error(401, "UNAUTHENTICATED", [error])
        login = seen.headers.get("login-customer-id")
        if login is not None and login != MANAGER:
            error = ads_error(
                "authorizationError", "USER_PERMISSION_DENIED", "no access via that manager"
            )
            return request_error(403, "PERMISSION_DENIED", [error])
        if seen.method == "GET" and seen.path == f"/{VERSION}/customers:listAccessibleCustomers":
            return Answer(200, {"resourceNames": [f"customers/{CUSTOMER}"]})
        if seen.method != "POST" or seen.path != self.upload_path:
            return Answer(
                404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
            )
        body = orjson.loads(seen.body)
        if body.get("partialFailure") is not True:
            error = ads_error("requestError", "INVALID_INPUT", "partialFailure must be true")
            return request_error(400, "INVALID_ARGUMENT", [error])
        conversions = body.get("conversions") or []
        if not 1 <= len(conversions) <= MAX_CONVERSIONS:
            error = ads_error(
                "conversionUploadError", "TOO_MANY_CONVERSIONS_IN_REQUEST", "too many"
            )
            return request_error(400, "INVALID_ARGUMENT", [error])
        return self._upload(conversions, validate_only=body.get("validateOnly") is True)

    def _upload(self, conversions: list[dict[str, Any]], *, validate_only: bool) -> Answer:
        orders = Counter((c.get("conversionAction"), c.get("orderId")) for c in conversions)
        errors: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for row, conversion in enumerate(conversions):
            found = self._problems(conversion)
            key = (conversion.get("conversionAction"), conversion.get("orderId"))
            if not found and orders[key] > 1:
                found = [
                    ("conversionUploadError", "DUPLICATE_ORDER_ID", "order id twice in request")
                ]
            elif not found and key in self._orders:
                found = [
                    ("conversionUploadError", "ORDER_ID_ALREADY_IN_USE", "order id already used")
                ]
            errors += [ads_error(f, c, m, row) for f, c, m in found]
            if found or validate_only:
                results.append({})
                continue
            self._orders.add(key)  # type: ignore[arg-type]
            self.received.append(conversion)
            results.append(
                {
                    k: conversion[k]
                    for k in (*CLICK_IDS, "conversionAction", "conversionDateTime")
                    if k in conversion
                }
            )
        if validate_only:
            self.validated.extend(conversions)
            return Answer(200, {"partialFailureError": failure(errors)} if errors else {})
        answer: dict[str, Any] = {"results": results, "jobId": str(next(self._jobs))}
        if errors:
            answer["partialFailureError"] = failure(errors)
        return Answer(200, answer)

    def _problems(self, conversion: dict[str, Any]) -> list[RowError]:
        found: list[RowError] = []
        action = ACTION.fullmatch(str(conversion.get("conversionAction", "")))
        if action is None or action.group(1) not in ACTIONS:
            found.append(("conversionUploadError", "NO_CONVERSION_ACTION_FOUND", "no such action"))
        if not ADS_TIME.fullmatch(str(conversion.get("conversionDateTime", ""))):
            message = "The string date time's format should be yyyy-mm-dd hh:mm:ss+|-hh:mm."
            found.append(("dateError", "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET", message))
        clicks = [k for k in CLICK_IDS if k in conversion]
        if {"gbraid", "wbraid"} <= set(clicks):
            found.append(("conversionUploadError", "GBRAID_WBRAID_BOTH_SET", "both braids"))
        elif len(clicks) > 1:
            found.append(("fieldError", "VALUE_MUST_BE_UNSET", "one click id per conversion"))
        identifiers = conversion.get("userIdentifiers", [])
        if len(identifiers) > MAX_IDENTIFIERS:
            found.append(("collectionSizeError", "TOO_MANY", f"at most {MAX_IDENTIFIERS}"))
        for identifier in identifiers:
            keys = set(identifier) - {"userIdentifierSource"}
            if len(keys) != 1 or not keys <= {"hashedEmail", "hashedPhoneNumber"}:
                found.append(
                    ("conversionUploadError", "UNSUPPORTED_USER_IDENTIFIER", "email or phone")
                )
            elif not HEX64.fullmatch(str(identifier[keys.pop()])):
                found.append(
                    ("conversionUploadError", "INVALID_USER_IDENTIFIER", "not SHA-256 hex")
                )
        consent = conversion.get("consent", {})
        if set(consent) - {"adUserData"}:
            found.append(
                ("fieldError", "VALUE_MUST_BE_UNSET", "adPersonalization is for Customer Match")
            )
        if not set(consent.values()) <= {"GRANTED", "DENIED", "UNSPECIFIED"}:
            found.append(("requestError", "INVALID_ENUM_VALUE", "consent"))
        if consent.get("adUserData") == "DENIED" and identifiers:
            # Tagless's documented rule, enforced here: denied ad_user_data, no user data
            found.append(("requestError", "USER_DATA_WITHOUT_CONSENT", "user data without consent"))
        if not clicks and not identifiers:
            found.append(("requestError", "REQUIRED_FIELD_MISSING", "a click id or identifiers"))
        scripted = self.row_errors.get(conversion.get("gclid") or conversion.get("orderId", ""))
        if scripted is not None and not found:
            found.append(scripted)
        return found
