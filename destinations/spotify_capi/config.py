"""Settings of the Spotify Ads Manager Conversions API destination."""

from __future__ import annotations

from typing import Final, Literal

import attrs

from router.sdk import Secret

CustomSlot = Literal[
    "CUSTOM_EVENT_1", "CUSTOM_EVENT_2", "CUSTOM_EVENT_3", "CUSTOM_EVENT_4", "CUSTOM_EVENT_5"
]

DEFAULT_ENDPOINT: Final = "https://capi.spotify.com"


def _connection_id(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    # Ads Manager shows it as a UUID, but the format is not documented publicly: check only
    # that it is one token, so a typo (a space, an empty value) is caught and nothing more.
    if not value or len(value) > 200 or any(ch.isspace() for ch in value):
        raise ValueError(
            "expected the CAPI connection id from Ads Manager (one token without spaces, "
            f"e.g. 3f2b8c1e-0a4d-4e6f-9b7a-1c2d3e4f5a6b), got {value!r}"
        )


def _token(_: object, attribute: attrs.Attribute[Secret], value: Secret) -> None:
    if not value.reveal().strip():
        raise ValueError("expected the CAPI access token, got an empty value")


def _http_url(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _batch_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= 1000:
        raise ValueError(f"expected 1 to 1000, got {value}")


@attrs.frozen
class SpotifyCapiConfig:
    """One CAPI connection (``connection_id``) and its access token.

    ``max_batch_size`` is a guess: Spotify documents no batch limit publicly.
    ``custom_events`` maps a ``custom`` event's sender name to one of the five custom slots.
    ``hash_device_id`` exists because Spotify's guide is inconsistent about raw or hashed
    ``device_id`` (its example and field note disagree); by default it is sent raw, as received.
    """

    #: the CAPI connection (data source) id from Ads Manager (shown as a UUID; only "one token, no
    #: spaces" is checked, since the format is not public), sent as `capi_connection_id`
    connection_id: str = attrs.field(validator=_connection_id)
    #: the connection's CAPI access token (use `${ENV}`); not the Ads API OAuth token
    token: Secret = attrs.field(validator=_token)
    #: base URL; `/capi-direct/events/` is appended
    endpoint: str = attrs.field(default=DEFAULT_ENDPOINT, validator=_http_url)
    #: events per request, 1 to 1,000; Spotify documents no limit, so this is a guess
    max_batch_size: int = attrs.field(default=100, validator=_batch_size)
    #: time for one request, connection included
    timeout_secs: float = 10.0
    #: sender event name → `CUSTOM_EVENT_1` … `CUSTOM_EVENT_5`
    custom_events: dict[str, CustomSlot] = attrs.field(factory=dict)
    #: send SHA-256 hex of the device id instead of the raw value
    hash_device_id: bool = False

    @property
    def events_url(self) -> str:
        """``POST`` target; the trailing slash is in every one of Spotify's examples."""
        return self.endpoint.rstrip("/") + "/capi-direct/events/"
