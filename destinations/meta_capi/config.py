"""Settings of the Meta Conversions API destination."""

from __future__ import annotations

import re
from typing import Final

import attrs

from router.sdk import Secret

#: The Graph API version used unless ``api_version`` says otherwise; each version is supported
#: for at least two years after release (Meta's *Using the API* page).
DEFAULT_API_VERSION: Final = "v23.0"
#: Meta takes at most this many events per request (*Using the API*).
MAX_EVENTS: Final = 1000
#: Meta refuses events older than this (server event parameters); a lower ``max_age_days`` is
#: allowed.
MAX_AGE_DAYS: Final = 7


def _http_url(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _pixel_id(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"expected the numeric pixel (dataset) id, got {value!r}")


def _api_version(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if re.fullmatch(r"v\d+\.\d+", value) is None:
        raise ValueError(f"expected a Graph API version such as 'v23.0', got {value!r}")


def _token(_: object, attribute: attrs.Attribute[Secret], value: Secret) -> None:
    if not value.reveal().strip():
        raise ValueError("expected a Conversions API access token, got an empty value")


def _batch_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_EVENTS:
        raise ValueError(f"expected 1 to {MAX_EVENTS}, got {value}")


def _max_age(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_AGE_DAYS:
        raise ValueError(f"expected 1 to {MAX_AGE_DAYS} (days), got {value}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value}")


@attrs.frozen
class MetaCapiConfig:
    """Where and as whom to send: ``POST {endpoint}/{api_version}/{pixel_id}/events``."""

    #: the pixel (dataset) id, digits, quoted as a string
    pixel_id: str = attrs.field(validator=_pixel_id)
    #: the Conversions API token (a System User token); use `${ENV}`
    access_token: Secret = attrs.field(validator=_token)
    #: Graph API base URL (tests point it at a fake)
    endpoint: str = attrs.field(default="https://graph.facebook.com", validator=_http_url)
    #: Graph API version such as `v23.0`; configurable, raise it as Meta retires versions (each
    #: lives at least two years)
    api_version: str = attrs.field(default=DEFAULT_API_VERSION, validator=_api_version)
    #: sent with every request: events go to Events Manager → Test Events. Remove it in production
    test_event_code: str | None = None
    #: events per request, 1 to 1000 (Meta's cap)
    max_batch_size: int = attrs.field(default=MAX_EVENTS, validator=_batch_size)
    #: time for one request; Meta suggests about 1.5 s, answers usually take < 0.6 s
    timeout_secs: float = attrs.field(default=10.0, validator=_positive)
    #: older events are `too_old`, never sent; 1 to 7 (Meta's limit)
    max_age_days: int = attrs.field(default=MAX_AGE_DAYS, validator=_max_age)

    @property
    def base_url(self) -> str:
        """``{endpoint}/{api_version}/{pixel_id}``, without a doubled slash."""
        return f"{self.endpoint.rstrip('/')}/{self.api_version}/{self.pixel_id}"
