"""Pure mapping of one canonical event to a Data Manager event or a Google Ads click conversion."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from destinations.google_ads import identity
from router.sdk import Event, MappingError, MissingIdentity, dumps

#: User identifiers one event may carry: Data Manager ``UserData`` takes 10, a Google Ads
#: click conversion 5 (``ClickConversion.user_identifiers``).
MAX_DATA_MANAGER_IDENTIFIERS: Final = 10
MAX_CLICK_IDENTIFIERS: Final = 5
#: Canonical action source → Data Manager ``EventSource``.
EVENT_SOURCES: Final = {"web": "WEB", "app": "APP", "offline": "IN_STORE", "phone_call": "PHONE"}
#: Canonical action source → Google Ads ``ConversionEnvironment`` (others are left out).
ENVIRONMENTS: Final = {"web": "WEB", "app": "APP"}
_CURRENCY: Final = re.compile(r"[A-Z]{3}")
#: The email and phone keys of an identifier: Data Manager's (True) or Google Ads' (False).
_IDENTIFIER_KEYS: Final = {
    True: ("emailAddress", "phoneNumber"),
    False: ("hashedEmail", "hashedPhoneNumber"),
}


def conversion_action(event: Event, actions: Mapping[str, str]) -> str:
    """The conversion action id configured for the event's canonical name.

    Routing keeps events without one away from this destination, so this fails only for an
    event routed before its name left ``conversion_actions`` (or a ``send-test`` purchase).
    """
    action = actions.get(event.name)
    if action is None:
        configured = ", ".join(sorted(actions)) or "none"
        raise MappingError(
            "no_conversion_action",
            f"no conversion action for {event.name!r} in conversion_actions ({configured})",
        )
    return action


def dedup_key(event: Event) -> str:
    """The order id (Google's dedup key for the action), else the event id."""
    return event.order_id or event.event_id


def rfc3339(moment: datetime) -> str:
    """``2026-11-20T14:30:05.123000Z``: UTC, microseconds, as protobuf JSON reads it."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes these years unpadded: kept as they always were sent
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The codec writes the same text in C, several times cheaper than strftime, but leaves
    # the fraction out when it is 0.
    text = dumps(utc).decode()
    return text[1:-1] if utc.microsecond else f"{text[1:-2]}.000000Z"


def ads_datetime(moment: datetime) -> str:
    """``yyyy-mm-dd hh:mm:ss+00:00``, the Google Ads API's ``conversionDateTime`` form.

    Whole seconds: the same event always gives the same value, which Google dedups on
    (click id, conversion time and action).
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def currency(event: Event) -> str | None:
    if event.currency is None:
        return None
    code = event.currency.strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise MappingError("invalid_currency", f"currency {event.currency!r} is not ISO 4217")
    return code


def _value(event: Event) -> float | None:
    return None if event.value is None else float(event.value)


def _identifiers(event: Event, *, address: bool) -> list[dict[str, Any]]:
    """Each identifier on its own: emails, then phones, then (Data Manager) the address."""
    if not identity.may_send_user_data(event):
        return []
    found: list[dict[str, Any]] = []
    email_key, phone_key = _IDENTIFIER_KEYS[address]
    found.extend({email_key: h} for h in identity.hashed_emails(event))
    found.extend({phone_key: h} for h in identity.hashed_phones(event))
    if address and (info := identity.address(event)) is not None:
        found.append({"address": info})
    return found


def _require_identity(event: Event, click: tuple[str, str] | None, ids: list[Any]) -> None:
    if click is None and not ids:
        why = (
            " (ad_user_data is denied, so no user data is sent)"
            if not identity.may_send_user_data(event)
            else ""
        )
        raise MissingIdentity(
            "no_identifier",
            "Google Ads needs a click id (gclid, gbraid or wbraid) or an email or phone to"
            f" match the conversion; the event has neither{why}",
        )


def data_manager_event(event: Event) -> dict[str, Any]:
    """One ``Event`` of a Data Manager ``events:ingest`` request."""
    click = identity.click_id(event)
    ids = _identifiers(event, address=True)[:MAX_DATA_MANAGER_IDENTIFIERS]
    _require_identity(event, click, ids)
    out: dict[str, Any] = {
        "transactionId": dedup_key(event),
        "eventTimestamp": rfc3339(event.occurred_at),
        "eventSource": EVENT_SOURCES.get(event.action_source, "OTHER"),
    }
    value, code = _value(event), currency(event)
    if value is not None:
        out["conversionValue"] = value
    if code is not None:
        out["currency"] = code
    if click is not None:
        out["adIdentifiers"] = {click[0]: click[1]}
    if ids:
        out["userData"] = {"userIdentifiers": ids}
    consent = identity.consent(event, "data_manager")
    if consent:
        out["consent"] = consent
    return out


def data_manager_payload(event: Event, actions: Mapping[str, str]) -> dict[str, Any]:
    """What ``send`` needs for one event: its conversion action and its Data Manager event."""
    return {
        "conversionAction": conversion_action(event, actions),
        "event": data_manager_event(event),
    }


def click_conversion(event: Event, customer_id: str, actions: Mapping[str, str]) -> dict[str, Any]:
    """One ``ClickConversion`` of an ``uploadClickConversions`` request."""
    action = conversion_action(event, actions)
    click = identity.click_id(event)
    ids = _identifiers(event, address=False)[:MAX_CLICK_IDENTIFIERS]
    _require_identity(event, click, ids)
    out: dict[str, Any] = {
        "conversionAction": f"customers/{customer_id}/conversionActions/{action}",
        "conversionDateTime": ads_datetime(event.occurred_at),
        "orderId": dedup_key(event),
    }
    value, code = _value(event), currency(event)
    if value is not None:
        out["conversionValue"] = value
    if code is not None:
        out["currencyCode"] = code
    if click is not None:
        out[click[0]] = click[1]
    if ids:
        out["userIdentifiers"] = [{**i, "userIdentifierSource": "FIRST_PARTY"} for i in ids]
    environment = ENVIRONMENTS.get(event.action_source)
    if environment is not None:
        out["conversionEnvironment"] = environment
    consent = identity.consent(event, "google_ads")
    if consent:
        out["consent"] = consent
    return out
