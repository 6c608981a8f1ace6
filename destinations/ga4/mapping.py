"""Pure mapping of one canonical event to a one-event GA4 Measurement Protocol request body."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from router.sdk import (
    Event,
    Item,
    MappingError,
    Normaliser,
    Profile,
    dumps,
    hash_all,
    hash_email,
    hash_name,
    hash_phone,
    hash_with,
    normalize_city,
    normalize_country,
    normalize_postal_code,
    normalize_region,
)

#: Canonical names GA4 has a recommended event for, by the GA4 name (recommended events).
EVENT_NAMES: Final = {
    "page_view": "page_view",
    "view_item": "view_item",
    "add_to_cart": "add_to_cart",
    "begin_checkout": "begin_checkout",
    "add_payment_info": "add_payment_info",
    "purchase": "purchase",
    "refund": "refund",
    "generate_lead": "generate_lead",
    "sign_up": "sign_up",
    "search": "search",
}
SUPPORTED_EVENTS: Final = frozenset({*EVENT_NAMES, "custom"})

#: Event names GA4 keeps for itself (MP reference, Firebase and GA's event naming rules).
#: ``page_view`` is on the web list too, but is sent for canonical page views (README.md).
RESERVED_EVENT_NAMES: Final = frozenset(
    {
        "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
        "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_remove",
        "app_store_refund", "app_store_subscription_cancel", "app_store_subscription_convert",
        "app_store_subscription_renew", "app_update", "app_upgrade", "dynamic_link_app_open",
        "dynamic_link_app_update", "dynamic_link_first_open", "error", "first_open",
        "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground",
        "notification_open", "notification_receive", "os_update", "session_start",
        "session_start_with_rollout", "user_engagement",
        "click", "file_download", "form_start", "form_submit", "page_view", "scroll",
        "view_complete", "video_progress", "video_start", "view_search_results",
    }
)  # fmt: skip
RESERVED_PREFIXES: Final = ("_", "firebase_", "ga_", "google_", "gtag.")
NAME_RULE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")

MAX_PARAMS: Final = 25
MAX_ITEMS: Final = 200
MAX_VALUE_CHARS: Final = 100
#: GA's event collection limits allow these parameters longer values.
LONG_VALUE_CHARS: Final = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
#: GA4 wants a request body under 130 kB.
MAX_BODY_BYTES: Final = 130_000
#: GA4 drops users whose events carry no engagement time; 1 ms is the smallest that counts.
MIN_ENGAGEMENT_MSEC: Final = 1

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_GA_COOKIE: Final = re.compile(r"GA\d\.\d+\.(\d+\.\d+)")
_SEPARATORS: Final = re.compile(r"[\s\-.]+")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")


def build_request(event: Event, *, app_stream: bool) -> dict[str, Any]:
    """The request body GA4 would get for this event alone; raises MappingError if it can't."""
    request: dict[str, Any] = {}
    if app_stream:
        request["app_instance_id"] = app_instance_id(event)
    else:
        request["client_id"] = client_id(event)
    if event.user_id:
        request["user_id"] = event.user_id
    micros = timestamp_micros(event.occurred_at)
    request["timestamp_micros"] = micros
    user_data = build_user_data(event)
    if user_data:
        request["user_data"] = user_data
    consent = build_consent(event)
    if consent:
        request["consent"] = consent
    name = event_name(event)
    request["events"] = [
        {"name": name, "params": build_params(event, name), "timestamp_micros": micros}
    ]
    size = len(dumps(request))
    if size >= MAX_BODY_BYTES:
        raise MappingError("payload_too_large", f"the request is {size} bytes; GA4 takes < 130 kB")
    return request


# -- identity ------------------------------------------------------------------------------------


def client_id(event: Event) -> str:
    """``ga_client_id`` (a ``GA1.1.`` cookie prefix removed), else a stable derived ID."""
    if event.ga_client_id:
        found = _GA_COOKIE.fullmatch(event.ga_client_id.strip())
        return found.group(1) if found else event.ga_client_id.strip()
    digest = _fallback_digest(event)
    first, second = int(digest[:16], 16) % 10**10, int(digest[16:32], 16) % 10**10
    return f"{first:010d}.{second:010d}"


def app_instance_id(event: Event) -> str:
    """``other_ids["app_instance_id"]`` (from the Firebase SDK), else a stable derived ID."""
    given = event.other_ids.get("app_instance_id")
    return given.strip() if given else _fallback_digest(event)[:32]


def _fallback_digest(event: Event) -> str:
    """SHA-256 hex of ``tagless:<anonymous_id>``, else of ``user_id``, else of ``event_id``."""
    seed = event.anonymous_id or event.user_id or event.event_id
    return hashlib.sha256(f"tagless:{seed}".encode()).hexdigest()


def timestamp_micros(moment: datetime) -> int:
    """Unix microseconds, exactly (no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def build_user_data(event: Event) -> dict[str, Any]:
    """Hashed contact data with Google's normalisation; plain, normalised city to country."""
    user_data: dict[str, Any] = {}
    emails = hash_all(event.emails, hash_email, "google")
    if emails:
        user_data["sha256_email_address"] = emails
    phones = hash_all(event.phones, hash_phone, "google")
    if phones:
        user_data["sha256_phone_number"] = phones
    address = {
        "sha256_first_name": hash_name(event.first_name, "google"),
        "sha256_last_name": hash_name(event.last_name, "google"),
        "sha256_street": hash_with(_normalize_street, event.street, "google"),
        "city": _plain(normalize_city, event.city),
        "region": _plain(normalize_region, event.region),
        "postal_code": _plain(normalize_postal_code, event.postal_code),
        "country": _plain(normalize_country, event.country),
    }
    address = {key: value for key, value in address.items() if value is not None}
    if address:
        user_data["address"] = [address]
    return user_data


def _normalize_street(value: str, profile: Profile) -> str | None:
    text = " ".join(unicodedata.normalize("NFC", value).strip().lower().split())
    return text or None


def _plain(normalise: Normaliser, value: str | None) -> str | None:
    return None if value is None else normalise(value, "google")


def build_consent(event: Event) -> dict[str, str]:
    """GRANTED or DENIED per signal; an unknown signal is left out, not guessed."""
    states = {
        "ad_user_data": event.consent.ad_user_data,
        "ad_personalization": event.consent.ad_personalization,
    }
    return {key: state.upper() for key, state in states.items() if state != "unknown"}


# -- the event -----------------------------------------------------------------------------------


def event_name(event: Event) -> str:
    """The recommended GA4 name, or for ``custom`` the sender's name in snake_case."""
    if event.name in EVENT_NAMES:
        return EVENT_NAMES[event.name]
    if event.name != "custom":
        raise MappingError("unsupported_event", f"GA4 has no event for {event.name!r}")
    name = _SEPARATORS.sub("_", event.source_name.strip()).lower()
    check_name(name, "event name", RESERVED_EVENT_NAMES)
    return name


def check_name(name: str, what: str, reserved: frozenset[str] = frozenset()) -> None:
    """GA4's rule for event and parameter names; a MappingError says which part fails."""
    if not NAME_RULE.fullmatch(name):
        raise MappingError(
            "invalid_name",
            f"{what} {name!r} breaks GA4's rule: at most 40 letters, digits or underscores,"
            " starting with a letter",
        )
    if name in reserved or name.startswith(RESERVED_PREFIXES):
        raise MappingError("reserved_name", f"{what} {name!r} is reserved by GA4")


def build_params(event: Event, name: str) -> dict[str, Any]:
    """Session, commerce and page parameters, checked against GA4's limits."""
    params: dict[str, Any] = {}
    if event.ga_session_id:
        params["session_id"] = event.ga_session_id
    params["engagement_time_msec"] = _engagement(event)
    if event.order_id:
        params["transaction_id"] = event.order_id
    elif name in ("purchase", "refund"):
        raise MappingError("missing_transaction_id", f"GA4 {name} needs an order_id")
    if event.value is not None:
        if not event.currency:
            raise MappingError("missing_currency", "GA4 needs a currency whenever value is set")
        params["value"] = _number(event.value)
    if event.currency:
        params["currency"] = _currency(event.currency)
    _put(params, "coupon", event.coupon)
    if event.shipping is not None:
        params["shipping"] = _number(event.shipping)
    if event.tax is not None:
        params["tax"] = _number(event.tax)
    if name == "page_view":
        _put(params, "page_location", event.page_url)
        _put(params, "page_referrer", event.referrer)
        _put(params, "page_title", _text_property(event, "title"))
    elif name == "search":
        _put(params, "search_term", _text_property(event, "query"))
    elif name == "sign_up":
        _put(params, "method", _text_property(event, "method"))
    if event.items:
        params["items"] = build_items(event.items)
    _check_params(params, name)
    return params


def _engagement(event: Event) -> int:
    given = event.properties.get("engagement_time_msec")
    if isinstance(given, int) and not isinstance(given, bool) and given >= MIN_ENGAGEMENT_MSEC:
        return given
    return MIN_ENGAGEMENT_MSEC


def build_items(items: tuple[Item, ...]) -> list[dict[str, Any]]:
    """GA4 item parameters; each item needs an id or a name."""
    if len(items) > MAX_ITEMS:
        raise MappingError("too_many_items", f"{len(items)} items; GA4 takes at most {MAX_ITEMS}")
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not item.id and not item.name:
            raise MappingError("invalid_item", f"item {index} has neither an id nor a name")
        entry: dict[str, Any] = {}
        _put(entry, "item_id", item.id)
        _put(entry, "item_name", item.name)
        if item.price is not None:
            entry["price"] = _number(item.price)
        if item.quantity is not None:
            entry["quantity"] = item.quantity
        _put(entry, "item_brand", item.brand)
        _put(entry, "item_category", item.category)
        _put(entry, "item_variant", item.variant)
        for key, value in entry.items():
            _check_length(f"items[{index}].{key}", value, MAX_VALUE_CHARS)
        out.append(entry)
    return out


def _check_params(params: dict[str, Any], name: str) -> None:
    if len(params) > MAX_PARAMS:
        raise MappingError(
            "too_many_params", f"{name} has {len(params)} parameters; GA4 takes {MAX_PARAMS}"
        )
    for key, value in params.items():
        _check_length(key, value, LONG_VALUE_CHARS.get(key, MAX_VALUE_CHARS))


def _check_length(key: str, value: Any, limit: int) -> None:
    """Too long is an error: a silently truncated value would look right and be wrong."""
    if isinstance(value, str) and len(value) > limit:
        raise MappingError(
            "param_too_long",
            f"parameter {key} is {len(value)} characters; GA4 takes at most {limit}",
        )


def _put(target: dict[str, Any], key: str, value: str | None) -> None:
    if value:
        target[key] = value


def _text_property(event: Event, key: str) -> str | None:
    value = event.properties.get(key)
    return value if isinstance(value, str) else None


def _currency(value: str) -> str:
    code = value.strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise MappingError("invalid_currency", f"currency {value!r} is not an ISO 4217 code")
    return code


def _number(value: Decimal) -> float:
    """GA4 wants JSON numbers, not the decimal strings of the canonical event."""
    return float(value)
