"""Pure mapping of a canonical event to one Spotify CAPI ``ConversionEvent`` (no I/O, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from destinations.spotify_capi.config import SpotifyCapiConfig
from router.sdk import (
    Event,
    MappingError,
    MissingIdentity,
    consent_denied,
    dumps,
    hash_all,
    hash_email,
    hash_phone,
    sha256_hex,
)

#: Canonical name → Spotify ``event_name`` (README.md); ``custom`` goes to a configured slot.
EVENT_NAMES: Final = {
    "page_view": "VIEW",
    "view_item": "PRODUCT",
    "add_to_cart": "ADD_TO_CART",
    "begin_checkout": "CHECK_OUT",
    "purchase": "PURCHASE",
    "generate_lead": "LEAD",
    "sign_up": "SIGN_UP",
}
SUPPORTED_EVENTS: Final = frozenset({*EVENT_NAMES, "custom"})

#: Canonical ``action_source`` → Spotify's enum. Sources Spotify has no word for (chat, email,
#: system_generated, other) leave the optional field out rather than claim WEB.
ACTION_SOURCES: Final = {"web": "WEB", "app": "APP", "offline": "OFFLINE", "phone_call": "OFFLINE"}

#: Property keys that may carry a Google Product Taxonomy id for ``content_category``.
TAXONOMY_KEYS: Final = ("google_product_category", "content_category")


def event_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-11-20T14:30:05.123Z`` (fixed width, sortable)."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes these years unpadded: kept as they always were sent
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    # The codec writes ``...T14:30:05.123456Z`` (no fraction when it is 0) in C, several times
    # cheaper than strftime; the first three fraction digits are the milliseconds, truncated.
    text = dumps(utc).decode()
    return f"{text[1:24]}Z" if utc.microsecond else f"{text[1:20]}.000Z"


def event_name(event: Event, config: SpotifyCapiConfig) -> str:
    """Spotify's name for the event, or MappingError when it has none."""
    name = EVENT_NAMES.get(event.name)
    if name is not None:
        return name
    if event.name == "custom":
        slot = config.custom_events.get(event.source_name)
        if slot is None:
            raise MappingError(
                "unmapped_custom_event",
                f"custom event {event.source_name!r} has no CUSTOM_EVENT_n slot in custom_events",
            )
        return slot
    raise MappingError("unsupported_event", f"Spotify CAPI has no event for {event.name!r}")


def user_data(event: Event, config: SpotifyCapiConfig) -> dict[str, Any]:
    """The four identifiers Spotify accepts; the IP only when it is the customer's public one."""
    data: dict[str, Any] = {}
    if event.client_ip and event.client_ip_class == "public":
        data["ip_address"] = event.client_ip
    if event.spotify_device_id and event.spotify_device_id.strip():
        device = event.spotify_device_id.strip()
        data["device_id"] = sha256_hex(device) if config.hash_device_id else device
    emails = hash_all(event.emails, hash_email, "spotify")
    if emails:
        data["hashed_emails"] = emails
    phones = hash_all(event.phones, hash_phone, "spotify")
    if phones:  # Spotify takes a single phone hash
        data["hashed_phone_number"] = phones[0]
    if not data:
        raise MissingIdentity(
            "no_user_identifier",
            "Spotify needs at least one of a public IP, device id, email or phone",
        )
    return data


def event_details(event: Event) -> dict[str, Any]:
    """Amount and currency (both or neither), and product name and taxonomy id when known."""
    details: dict[str, Any] = {}
    if event.value is not None and event.currency:
        details["amount"] = float(event.value)  # Spotify's type is a double
        details["currency"] = event.currency.upper()
    if len(event.items) == 1 and event.items[0].name:  # one product: its name is the content
        details["content_name"] = event.items[0].name
    category = taxonomy_id(event)
    if category is not None:
        details["content_category"] = category
    return details


def taxonomy_id(event: Event) -> str | None:
    """A numeric Google Product Taxonomy id, or None: free text gets a 400 from Spotify."""
    properties = event.properties
    for key in TAXONOMY_KEYS:
        if (text := _digits(properties.get(key))) is not None:
            return text
    return _digits(event.items[0].category) if len(event.items) == 1 else None


def _digits(candidate: object) -> str | None:
    """The candidate as trimmed text when that is ASCII digits only, else None."""
    if not isinstance(candidate, str | int):
        return None
    text = str(candidate).strip()
    return text if text.isascii() and text.isdigit() else None


def conversion_event(event: Event, config: SpotifyCapiConfig) -> dict[str, Any]:
    """One ``ConversionEvent``; the caller clamps a future ``event_time`` at send time."""
    payload: dict[str, Any] = {
        "event_name": event_name(event, config),
        "event_id": event.event_id,
        "event_time": event_time(event.occurred_at),
        "user_data": user_data(event, config),
    }
    details = event_details(event)
    if details:
        payload["event_details"] = details
    if event.page_url and event.page_url.startswith(("http://", "https://")):
        payload["event_source_url"] = event.page_url
    action_source = ACTION_SOURCES.get(event.action_source)
    if action_source is not None:
        payload["action_source"] = action_source
    payload["opt_out_targeting"] = consent_denied(event)
    return payload
