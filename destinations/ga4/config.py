"""Settings of the GA4 Measurement Protocol destination."""

from __future__ import annotations

import re
from typing import Final

import attrs

from router.sdk import Secret

#: GA4 takes at most 25 events per request (Measurement Protocol reference).
MAX_EVENTS_PER_REQUEST: Final = 25
#: GA4 accepts events backdated by at most 72 hours (Send Measurement Protocol events).
MAX_AGE_HOURS: Final = 72.0

_MEASUREMENT_ID: Final = re.compile(r"G-[A-Z0-9]+")


def _measurement_id(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not _MEASUREMENT_ID.fullmatch(value):
        raise ValueError(f"expected a web stream measurement ID like G-XXXXXXX, got {value!r}")


def _without_trailing_slash(url: str) -> str:
    return url.rstrip("/")


def _http_url(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _batch_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_EVENTS_PER_REQUEST:
        raise ValueError(f"expected 1 to {MAX_EVENTS_PER_REQUEST}, got {value}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"expected a number above 0, got {value}")


def _max_age(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value <= MAX_AGE_HOURS:
        raise ValueError(
            f"expected above 0 and at most {MAX_AGE_HOURS:g} (GA4's limit), got {value}"
        )


@attrs.frozen
class Ga4Config:
    """A web stream (``measurement_id``) or an app stream (``firebase_app_id``), and its secret."""

    #: the stream's MP API secret (use `${ENV}`); sent in the query string, never logged
    api_secret: Secret
    #: web stream ID, `G-…` (not the numeric stream ID); set this or `firebase_app_id`
    measurement_id: str | None = attrs.field(default=None, validator=_measurement_id)
    #: app stream ID; requests then carry `app_instance_id`
    firebase_app_id: str | None = None
    #: base URL; `https://region1.google-analytics.com` for EU collection
    endpoint: str = attrs.field(
        default="https://www.google-analytics.com",
        converter=_without_trailing_slash,
        validator=_http_url,
    )
    #: check every request with the validation server before sending it
    validate: bool = False
    #: events per request (one client's), 1 to 25
    max_batch_size: int = attrs.field(default=MAX_EVENTS_PER_REQUEST, validator=_batch_size)
    #: time for one request
    timeout_secs: float = attrs.field(default=10.0, validator=_positive)
    #: older events are rejected (`too_old`) unsent; at most 72
    max_age_hours: float = attrs.field(default=MAX_AGE_HOURS, validator=_max_age)

    def __attrs_post_init__(self) -> None:
        if (self.measurement_id is None) == (self.firebase_app_id is None):
            raise ValueError(
                "set exactly one of measurement_id (web stream) or firebase_app_id (app stream)"
            )

    @property
    def is_app_stream(self) -> bool:
        return self.firebase_app_id is not None

    def query(self) -> dict[str, str]:
        """The stream and secret query parameters every request carries."""
        stream = (
            {"firebase_app_id": self.firebase_app_id}
            if self.firebase_app_id is not None
            else {"measurement_id": str(self.measurement_id)}
        )
        return {**stream, "api_secret": self.api_secret.reveal()}
