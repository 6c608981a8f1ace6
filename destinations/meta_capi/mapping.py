"""The pure mapping from a canonical event to one Meta server event (sources in README.md)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from router.sdk import (
    Event,
    MappingError,
    MissingIdentity,
    Profile,
    hash_all,
    hash_city,
    hash_country,
    hash_date_of_birth,
    hash_email,
    hash_external_id,
    hash_gender,
    hash_name,
    hash_phone,
    hash_postal_code,
    hash_region,
)

#: Canonical name → Meta standard event (Pixel reference). Meta dedups on the exact name.
EVENT_NAMES: Final = {
    "page_view": "PageView",
    "view_item": "ViewContent",
    "add_to_cart": "AddToCart",
    "begin_checkout": "InitiateCheckout",
    "add_payment_info": "AddPaymentInfo",
    "purchase": "Purchase",
    "generate_lead": "Lead",
    "sign_up": "CompleteRegistration",
    "search": "Search",
}
#: Every canonical name this destination can express; refund and the identity calls have none.
SUPPORTED: Final = frozenset(EVENT_NAMES) | {"custom"}

#: Canonical action source → Meta's ``action_source`` enum (server event parameters).
ACTION_SOURCES: Final = {
    "web": "website",
    "app": "app",
    "offline": "physical_store",
    "phone_call": "phone_call",
    "chat": "chat",
    "email": "email",
    "system_generated": "system_generated",
    "other": "other",
}
#: Custom event names: a conservative length; Meta documents no limit publicly.
MAX_CUSTOM_NAME: Final = 50
_CUSTOM_NAME_PUNCTUATION: Final = frozenset(" _-.")

Hasher = Callable[[str | None, Profile], str | None]
#: ``user_data`` keys hashed from one canonical field each (customer information parameters).
_SINGLE_HASHED: Final[tuple[tuple[str, str, Hasher], ...]] = (
    ("fn", "first_name", hash_name),
    ("ln", "last_name", hash_name),
    ("ge", "gender", hash_gender),
    ("db", "date_of_birth", hash_date_of_birth),
    ("ct", "city", hash_city),
    ("st", "region", hash_region),
    ("zp", "postal_code", hash_postal_code),
    ("country", "country", hash_country),
    ("external_id", "user_id", hash_external_id),
)


def event_name(event: Event) -> str:
    """Meta's standard name, or for ``custom`` the sender's own name, whitespace tidied.

    The custom name is kept as the sender wrote it (not re-cased) so that it still dedups
    against a Pixel ``trackCustom`` call using the same name.
    """
    standard = EVENT_NAMES.get(event.name)
    if standard is not None:
        return standard
    if event.name != "custom":
        raise MappingError("unsupported_event", f"Meta has no event for {event.name!r}")
    name = " ".join(unicodedata.normalize("NFC", event.source_name).split())
    if not name or len(name) > MAX_CUSTOM_NAME:
        raise MappingError(
            "invalid_event_name", f"custom event name must be 1-{MAX_CUSTOM_NAME} characters"
        )
    if not all(ch.isalnum() or ch in _CUSTOM_NAME_PUNCTUATION for ch in name):
        raise MappingError(
            "invalid_event_name",
            "custom event name may hold only letters, digits, spaces, '_', '-' and '.'",
        )
    return name


def user_data(event: Event) -> dict[str, Any]:
    """Hashed identity, plus the fields Meta wants in clear (IP, user agent, fbc, fbp)."""
    out: dict[str, Any] = {}
    emails = hash_all(event.emails, hash_email, "meta")
    if emails:
        out["em"] = emails
    phones = hash_all(event.phones, hash_phone, "meta")
    if phones:
        out["ph"] = phones
    for key, field, hasher in _SINGLE_HASHED:
        value = getattr(event, field)
        if value is not None and (hashed := hasher(value, "meta")) is not None:
            out[key] = hashed
    # Only a public address is the customer's: private, CDN or our own server's would
    # mislead matching, so they are left out rather than sent.
    if event.client_ip and event.client_ip_class == "public":
        out["client_ip_address"] = event.client_ip
    if event.user_agent:
        out["client_user_agent"] = event.user_agent
    if event.fbc:
        out["fbc"] = event.fbc  # the exact cookie: Meta flags a modified fbclid
    if event.fbp:
        out["fbp"] = event.fbp
    return out


def _number(value: Decimal) -> int | float:
    """A JSON number for Meta (the canonical event keeps money as Decimal)."""
    return int(value) if value == value.to_integral_value() else float(value)


def custom_data(event: Event) -> dict[str, Any]:
    """Value, currency and contents (custom data); a purchase without both is refused."""
    if event.name == "purchase" and (event.value is None or event.currency is None):
        raise MappingError("missing_value", "a Meta Purchase needs value and currency")
    out: dict[str, Any] = {}
    if event.value is not None:
        out["value"] = _number(event.value)
    if event.currency is not None:
        out["currency"] = event.currency.lower()  # as Meta's SDK sends it
    contents: list[dict[str, Any]] = []
    ids: list[str] = []
    count = 0
    for item in event.items:  # one pass: contents, their ids, and the count of every item
        quantity = item.quantity or 1
        count += quantity
        if item.id:
            content: dict[str, Any] = {"id": item.id, "quantity": quantity}
            if item.price is not None:
                content["item_price"] = _number(item.price)
            contents.append(content)
            ids.append(item.id)
    if contents:
        out["contents"] = contents
        out["content_ids"] = ids
        out["content_type"] = "product"
    if event.items and event.name in ("begin_checkout", "purchase"):
        out["num_items"] = count
    if event.order_id:
        out["order_id"] = event.order_id
    query = event.properties.get("query")
    if event.name == "search" and isinstance(query, str) and query:
        out["search_string"] = query
    return out


def map_event(event: Event) -> dict[str, Any]:
    """One Meta server event; raises MappingError for what Meta would refuse anyway."""
    name = event_name(event)
    action_source = ACTION_SOURCES.get(event.action_source, "other")
    users = user_data(event)
    if not users:
        # Meta cannot match an event without any user data (e.g. consent denied, identity
        # dropped); one such event would fail the whole request.
        raise MissingIdentity("no_user_data", "Meta needs at least one user_data field")
    if action_source == "website":
        if not event.user_agent:
            raise MissingIdentity("missing_user_agent", "Meta website events need the user agent")
        if not event.page_url:
            raise MappingError("missing_page_url", "Meta website events need event_source_url")
    payload: dict[str, Any] = {
        "event_name": name,
        "event_time": int(event.occurred_at.timestamp()),
        "event_id": event.event_id,
        "action_source": action_source,
    }
    if event.page_url:
        payload["event_source_url"] = event.page_url
    if event.referrer:
        payload["referrer_url"] = event.referrer
    payload["user_data"] = users
    custom = custom_data(event)
    if custom:
        payload["custom_data"] = custom
    if event.consent.ad_personalization == "denied":
        payload["opt_out"] = True  # attribution only, no delivery optimisation
    return payload
