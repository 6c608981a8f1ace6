"""A fake Data Manager API enforcing the documented ``events:ingest`` rules (README.md).

Fast-fail like Google: one bad event fails the whole request with a ``google.rpc.Status``
carrying ``BadRequest`` field violations (``events[i].field``) and an ``ErrorInfo`` reason.
Accepted events are kept in ``received`` with their conversion action.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any, Final

import orjson

from router.testing.fake_platform import Answer, FakePlatform, Recorded

CUSTOMER: Final = "1234567890"
MANAGER: Final = "1112223333"
ACTIONS: Final = frozenset({"987654321", "987654322"})
MAX_EVENTS: Final = 2000
MAX_IDENTIFIERS: Final = 10
RFC3339: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
HEX64: Final = re.compile(r"[0-9a-f]{64}")
CONSENT_VALUES: Final = frozenset({"CONSENT_GRANTED", "CONSENT_DENIED"})
EVENT_SOURCES: Final = frozenset({"WEB", "APP", "IN_STORE", "PHONE", "OTHER"})
AD_IDENTIFIERS: Final = frozenset({"gclid", "gbraid", "wbraid", "sessionAttributes"})
Violation = tuple[str, str, str]  # field, reason, description


def rpc_error(
    code: int, status: str, message: str, reason: str | None, violations: list[Violation] = ()
) -> dict[str, Any]:
    """A Google API error body (``google.rpc.Status`` in JSON) as the Data Manager API sends."""
    details: list[dict[str, Any]] = []
    if violations:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": field, "reason": why, "description": text}
                    for field, why, text in violations
                ],
            }
        )
    if reason:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "datamanager.googleapis.com",
            }
        )
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


def unauthenticated() -> Answer:
    return Answer(401, rpc_error(401, "UNAUTHENTICATED", "Request had invalid credentials.", None))


class FakeDataManager:
    """The responder of a :class:`FakePlatform` that speaks ``events:ingest``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.validated: list[dict[str, Any]] = []
        self.revoked: set[str] = set()
        self.tokens_seen: list[str] = []
        #: False: errors name no event (no BadRequest), as an answer Tagless must still handle
        self.name_events = True
        self._ids = itertools.count(1)
        self.platform = FakePlatform(responder=self)

    @property
    def requests(self) -> list[Recorded]:
        return self.platform.requests

    def __call__(self, seen: Recorded) -> Answer:
        token = seen.headers.get("Authorization", "").removeprefix("Bearer ")
        self.tokens_seen.append(token)
        if not token or token in self.revoked:
            return unauthenticated()
        if seen.method != "POST" or seen.path != "/v1/events:ingest":
            return Answer(404, rpc_error(404, "NOT_FOUND", f"no method {seen.path}", None))
        try:
            body = orjson.loads(seen.body)
        except orjson.JSONDecodeError:
            return Answer(400, rpc_error(400, "INVALID_ARGUMENT", "body is not JSON", None))
        refused = self._check_request(body)
        if refused is not None:
            return refused
        violations = [v for i, e in enumerate(body["events"]) for v in self._check_event(i, e)]
        if violations:
            field, reason, text = violations[0]
            message = f"{text} at {field}"
            named = violations if self.name_events else []
            return Answer(400, rpc_error(400, "INVALID_ARGUMENT", message, reason, named))
        if body.get("validateOnly"):
            self.validated.extend(body["events"])
            return Answer(200, {})
        action = body["destinations"][0]["productDestinationId"]
        self.received.extend({**event, "_action": action} for event in body["events"])
        return Answer(200, {"requestId": f"request-{next(self._ids)}"})

    def _check_request(self, body: Any) -> Answer | None:
        destinations = body.get("destinations") if isinstance(body, dict) else None
        if not isinstance(destinations, list) or len(destinations) != 1:
            return _invalid(
                "exactly one destination per request (Tagless's rule)", "INVALID_ARGUMENT"
            )
        destination = destinations[0]
        account = destination.get("operatingAccount", {})
        if (
            account.get("accountType") != "GOOGLE_ADS"
            or not str(account.get("accountId", "")).isdigit()
        ):
            return _invalid(
                "operatingAccount needs accountType GOOGLE_ADS and an accountId",
                "INVALID_DESTINATION",
            )
        if account["accountId"] != CUSTOMER:
            message = "The caller does not have permission"
            return Answer(403, rpc_error(403, "PERMISSION_DENIED", message, "PERMISSION_DENIED"))
        login = destination.get("loginAccount")
        if login is not None and login != {"accountType": "GOOGLE_ADS", "accountId": MANAGER}:
            message = "loginAccount has no access to the operating account"
            return Answer(403, rpc_error(403, "PERMISSION_DENIED", message, "PERMISSION_DENIED"))
        if destination.get("productDestinationId") not in ACTIONS:
            return _invalid("Conversion action ID is not valid.", "INVALID_CONVERSION_ACTION_ID")
        events = body.get("events")
        if not isinstance(events, list) or not events:
            return _invalid("events is required", "REQUIRED_FIELD_MISSING")
        if len(events) > MAX_EVENTS:
            return _invalid(f"at most {MAX_EVENTS} events per request", "TOO_MANY_EVENTS")
        if any("userData" in e for e in events) and body.get("encoding") != "HEX":
            return _invalid(
                "encoding is required with userData (HEX here)", "REQUIRED_FIELD_MISSING"
            )
        return None

    def _check_event(self, index: int, event: Any) -> list[Violation]:
        at = f"events[{index}]"
        found: list[Violation] = []
        stamp = event.get("eventTimestamp")
        if not (isinstance(stamp, str) and RFC3339.fullmatch(stamp) and _parses(stamp)):
            found.append((f"{at}.event_timestamp", "INVALID_FORMAT", "not an RFC 3339 timestamp"))
        if not isinstance(event.get("transactionId"), str) or not event["transactionId"]:
            found.append((f"{at}.transaction_id", "REQUIRED_FIELD_MISSING", "transactionId"))
        if event.get("eventSource", "WEB") not in EVENT_SOURCES:
            found.append((f"{at}.event_source", "INVALID_ENUM_VALUE", "eventSource"))
        currency = event.get("currency")
        if currency is not None and not re.fullmatch(r"[A-Z]{3}", str(currency)):
            found.append((f"{at}.currency", "INVALID_CURRENCY_CODE", "not ISO 4217"))
        value = event.get("conversionValue")
        if value is not None and not isinstance(value, int | float):
            found.append((f"{at}.conversion_value", "INVALID_NUMBER_FORMAT", "not a number"))
        ads = event.get("adIdentifiers", {})
        if set(ads) - AD_IDENTIFIERS:
            found.append((f"{at}.ad_identifiers", "INVALID_ARGUMENT", "unknown ad identifier"))
        if len(set(ads) & {"gclid", "gbraid", "wbraid"}) > 1:
            found.append((f"{at}.ad_identifiers", "INVALID_ARGUMENT", "one click id per event"))
        identifiers = event.get("userData", {}).get("userIdentifiers")
        if identifiers is not None:
            found += _check_identifiers(f"{at}.user_data", identifiers)
        consent = event.get("consent", {})
        if (
            set(consent) - {"adUserData", "adPersonalization"}
            or not set(consent.values()) <= CONSENT_VALUES
        ):
            found.append((f"{at}.consent", "INVALID_ENUM_VALUE", "consent"))
        if consent.get("adUserData") == "CONSENT_DENIED" and identifiers:
            # Tagless's documented rule, enforced here: denied ad_user_data, no user data
            found.append((f"{at}.user_data", "INVALID_EVENT", "user data sent without consent"))
        if not identifiers and not set(ads) & {"gclid", "gbraid", "wbraid"}:
            found.append((at, "NO_IDENTIFIERS_PROVIDED", "no user or ad identifiers"))
        return found


def _check_identifiers(at: str, identifiers: Any) -> list[Violation]:
    if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= MAX_IDENTIFIERS:
        return [(at, "TOO_MANY_USER_IDENTIFIERS", f"1 to {MAX_IDENTIFIERS} user identifiers")]
    found: list[Violation] = []
    for i, identifier in enumerate(identifiers):
        where = f"{at}.user_identifiers[{i}]"
        if not isinstance(identifier, dict) or len(identifier) != 1:
            found.append((where, "INVALID_ARGUMENT", "exactly one of email, phone, address"))
            continue
        [(key, value)] = identifier.items()
        if key in ("emailAddress", "phoneNumber"):
            if not (isinstance(value, str) and HEX64.fullmatch(value)):
                found.append((f"{where}.{key}", "INVALID_SHA256_FORMAT", "not SHA-256 hex"))
        elif key == "address":
            found += _check_address(f"{where}.address", value)
        else:
            found.append((where, "INVALID_ARGUMENT", f"unknown identifier {key}"))
    return found


def _check_address(at: str, address: Any) -> list[Violation]:
    found: list[Violation] = []
    for key in ("givenName", "familyName"):
        if not HEX64.fullmatch(str(address.get(key, ""))):
            found.append((f"{at}.{key}", "INVALID_SHA256_FORMAT", "not SHA-256 hex"))
    if not re.fullmatch(r"[A-Z]{2}", str(address.get("regionCode", ""))):
        found.append((f"{at}.region_code", "INVALID_COUNTRY_CODE", "ISO 3166-1 alpha-2"))
    if not str(address.get("postalCode", "")).strip():
        found.append((f"{at}.postal_code", "INVALID_POSTAL_CODE", "postal code required"))
    return found


def _invalid(message: str, reason: str) -> Answer:
    return Answer(400, rpc_error(400, "INVALID_ARGUMENT", message, reason))


def _parses(stamp: str) -> bool:
    try:
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
