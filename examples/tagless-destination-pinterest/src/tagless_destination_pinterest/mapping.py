"""Canonical event -> one element of the Conversions API's ``data`` list (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from router.sdk import (
    Event,
    MappingError,
    MissingIdentity,
    consent_denied,
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

#: Canonical name -> Pinterest ``event_name`` (the ``events/create`` enum).
EVENT_NAMES: Final = {
    "page_view": "page_visit",
    "view_item": "page_visit",
    "add_to_cart": "add_to_cart",
    "begin_checkout": "initiate_checkout",
    "add_payment_info": "add_payment_info",
    "purchase": "checkout",
    "generate_lead": "lead",
    "sign_up": "signup",
    "search": "search",
    "custom": "custom",
}
SUPPORTED_EVENTS: Final = frozenset(EVENT_NAMES)

#: Pinterest documents normalisations that the Meta profile of router.sdk already applies:
#: lowercase emails, phone digits with the country code, lowercase names, cities, states and
#: two-letter countries, then SHA-256 hex.
PROFILE: Final = "meta"


def _one(hasher: Any, value: str | None) -> list[str]:
    hashed = hasher(value, PROFILE)
    return [hashed] if hashed else []


def user_data(event: Event) -> dict[str, Any]:
    """Hashed identity, and the IP (only a public one) and user agent in clear."""
    data: dict[str, Any] = {
        "em": hash_all(event.emails, hash_email, PROFILE),
        "ph": hash_all(event.phones, hash_phone, PROFILE),
        "fn": _one(hash_name, event.first_name),
        "ln": _one(hash_name, event.last_name),
        "ge": _one(hash_gender, event.gender),
        "db": _one(hash_date_of_birth, event.date_of_birth),
        "ct": _one(hash_city, event.city),
        "st": _one(hash_region, event.region),
        "zp": _one(hash_postal_code, event.postal_code),
        "country": _one(hash_country, event.country),
        "external_id": _one(hash_external_id, event.user_id),
    }
    data = {key: value for key, value in data.items() if value}
    if event.client_ip and event.client_ip_class == "public":
        data["client_ip_address"] = event.client_ip
    if event.user_agent:
        data["client_user_agent"] = event.user_agent
    if not data.get("em") and not ("client_ip_address" in data and "client_user_agent" in data):
        raise MissingIdentity(
            "no_identity", "Pinterest needs an email, or a public IP with a user agent"
        )
    return data


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def custom_data(event: Event) -> dict[str, Any]:
    """Order value (a decimal string, as the API takes it), currency, order id, products."""
    data: dict[str, Any] = {
        "currency": event.currency.upper() if event.currency else None,
        "value": _money(event.value),
        "order_id": event.order_id,
        "search_string": event.properties.get("query") if event.name == "search" else None,
    }
    if event.items:
        data["content_ids"] = [item.id for item in event.items if item.id]
        data["contents"] = [
            {
                key: value
                for key, value in {
                    "id": item.id,
                    "item_name": item.name,
                    "item_price": _money(item.price),
                    "quantity": item.quantity,
                    "item_brand": item.brand,
                    "item_category": item.category,
                }.items()
                if value is not None
            }
            for item in event.items
        ]
        data["num_items"] = sum(item.quantity or 1 for item in event.items)
    return {key: value for key, value in data.items() if value not in (None, [], "")}


def conversion(event: Event) -> dict[str, Any]:
    """One Pinterest conversion event; a MappingError for a name Pinterest has no event for."""
    name = EVENT_NAMES.get(event.name)
    if name is None:
        raise MappingError("unsupported_event", f"Pinterest has no event for {event.name!r}")
    out: dict[str, Any] = {
        "event_name": name,
        "action_source": "offline" if event.action_source in ("offline", "phone_call") else "web",
        "event_time": int(event.occurred_at.timestamp()),
        "event_id": event.event_id,
        "user_data": user_data(event),
        "opt_out": consent_denied(event),
    }
    if event.page_url and event.page_url.startswith(("http://", "https://")):
        out["event_source_url"] = event.page_url
    if event.locale:
        out["language"] = event.locale[:2].lower()
    custom = custom_data(event)
    if custom:
        out["custom_data"] = custom
    return out
