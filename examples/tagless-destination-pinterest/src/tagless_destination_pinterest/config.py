"""Settings of the Pinterest Conversions API destination (each key described for
``tagless destinations`` through attrs metadata)."""

from __future__ import annotations

from typing import Final

import attrs

from router.sdk import Secret

#: ``data`` takes 1 to 1,000 events per request (the ``events/create`` schema's maxItems).
MAX_EVENTS: Final = 1000


def _digits(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"expected the numeric ad account id, got {value!r}")


def _http_url(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _batch_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_EVENTS:
        raise ValueError(f"expected 1 to {MAX_EVENTS}, got {value}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"expected a number of seconds above 0, got {value}")


@attrs.frozen
class PinterestConfig:
    """``POST {endpoint}/v5/ad_accounts/{ad_account_id}/events`` with a conversion token."""

    ad_account_id: str = attrs.field(
        validator=_digits, metadata={"description": "the Pinterest ad account id, digits"}
    )
    access_token: Secret = attrs.field(
        metadata={
            "description": "the conversion access token from Ads Manager (use ${ENV});"
            " sent as a Bearer token"
        }
    )
    endpoint: str = attrs.field(
        default="https://api.pinterest.com",
        validator=_http_url,
        metadata={"description": "base URL of the Pinterest API (tests point it at a local one)"},
    )
    test: bool = attrs.field(
        default=False,
        metadata={
            "description": "add ?test=true: Pinterest validates and answers, records nothing"
        },
    )
    max_batch_size: int = attrs.field(
        default=MAX_EVENTS,
        validator=_batch_size,
        metadata={"description": "events per request, 1 to 1000"},
    )
    timeout_secs: float = attrs.field(
        default=10.0, validator=_positive, metadata={"description": "time for one request"}
    )

    @property
    def events_url(self) -> str:
        return f"{self.endpoint.rstrip('/')}/v5/ad_accounts/{self.ad_account_id}/events"
