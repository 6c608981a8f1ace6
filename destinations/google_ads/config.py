"""Settings of the Google Ads destination: account, conversion actions, mode, credentials."""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import attrs

from destinations.google_ads.answers import ERROR_CLASSES, ErrorClass
from router.sdk import CANONICAL_NAMES, DEFAULT_TOKEN_ENDPOINT, GoogleCredentials, Secret

Mode = Literal["data_manager", "click_upload"]
#: Base URLs by mode (Data Manager ``events:ingest``; Google Ads API REST).
DEFAULT_ENDPOINTS: Final[dict[str, str]] = {
    "data_manager": "https://datamanager.googleapis.com",
    "click_upload": "https://googleads.googleapis.com",
}
#: OAuth scopes by mode (each API's reference).
SCOPES: Final[dict[str, str]] = {
    "data_manager": "https://www.googleapis.com/auth/datamanager",
    "click_upload": "https://www.googleapis.com/auth/adwords",
}
#: The Google Ads API version for click upload: the newest Google's docs name (Oct 2026).
#: Google retires versions about a year after release; raise it when Google says so.
DEFAULT_API_VERSION: Final = "v26"
#: Both APIs take at most 2,000 events (conversions) per request.
MAX_EVENTS: Final = 2000
#: Google's wait for TOO_RECENT_* answers: "retry after 6 hours".
RETRY_LATER_SECS: Final = 6 * 3600.0

_DIGITS: Final = re.compile(r"\d+")
_ERROR_CODE: Final = re.compile(r"[A-Z][A-Z0-9_]*")


def _customer_id(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None or _DIGITS.fullmatch(value):
        return
    hint = ""
    if re.fullmatch(r"[\d-]+", value):
        hint = f"; without the hyphens: {value.replace('-', '')!r}"
    raise ValueError(f"expected the Google Ads customer id as digits only, got {value!r}{hint}")


def _conversion_actions(
    _: object, attribute: attrs.Attribute[dict[str, str]], value: dict[str, str]
) -> None:
    if not value:
        raise ValueError(
            "map at least one canonical event to a conversion action id,"
            ' e.g. {purchase: "987654321"}'
        )
    for name, action in value.items():
        if name not in CANONICAL_NAMES:
            valid = ", ".join(sorted(CANONICAL_NAMES))
            raise ValueError(f"{name!r} is not a canonical event name; valid: {valid}")
        if not _DIGITS.fullmatch(action):
            raise ValueError(
                f"{name}: expected the numeric conversion action id (ctId= in the Google Ads"
                f" URL), got {action!r}"
            )


def _http_url(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _api_version(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if re.fullmatch(r"v\d+", value) is None:
        raise ValueError(f"expected a Google Ads API version such as 'v26', got {value!r}")


def _batch_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_EVENTS:
        raise ValueError(f"expected 1 to {MAX_EVENTS}, got {value}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value}")


def _token(_: object, attribute: attrs.Attribute[Secret | None], value: Secret | None) -> None:
    if value is not None and value.missing is None and not value.reveal().strip():
        raise ValueError("expected the Google Ads API developer token, got an empty value")


def _error_classes(
    _: object, attribute: attrs.Attribute[dict[str, ErrorClass]], value: dict[str, ErrorClass]
) -> None:
    for code, kind in value.items():
        if not _ERROR_CODE.fullmatch(code):
            raise ValueError(f"expected an error code such as TOO_RECENT_EVENT, got {code!r}")
        if kind not in ERROR_CLASSES:
            raise ValueError(f"{code}: expected one of {', '.join(ERROR_CLASSES)}, got {kind!r}")


def _without_trailing_slash(url: str | None) -> str | None:
    return None if url is None else url.rstrip("/")


@attrs.frozen(kw_only=True)
class GoogleAdsConfig:
    """One Google Ads account and its conversion actions, reached in one of two modes."""

    #: `data_manager` or `click_upload`
    mode: Mode = "data_manager"
    #: the Google Ads account, digits only
    customer_id: str = attrs.field(validator=_customer_id)
    #: the manager account, digits only, when access goes through one
    login_customer_id: str | None = attrs.field(default=None, validator=_customer_id)
    #: Canonical event name → conversion action id; other events are not routed here.
    conversion_actions: dict[str, str] = attrs.field(validator=_conversion_actions)
    #: `{service_account_file: path}` or `{client_id, client_secret, refresh_token}` (secrets as
    #: `${ENV}`)
    credentials: GoogleCredentials
    #: Google Ads API developer token; click_upload only.
    developer_token: Secret | None = attrs.field(default=None, validator=_token)
    #: Base URL; default by mode (DEFAULT_ENDPOINTS).
    endpoint: str | None = attrs.field(
        default=None, converter=_without_trailing_slash, validator=_http_url
    )
    #: where access tokens come from
    token_endpoint: str = attrs.field(default=DEFAULT_TOKEN_ENDPOINT, validator=_http_url)
    #: Google Ads API version; click_upload only.
    api_version: str = attrs.field(default=DEFAULT_API_VERSION, validator=_api_version)
    #: events per send, 1 to 2000
    max_batch_size: int = attrs.field(default=MAX_EVENTS, validator=_batch_size)
    #: time for one request
    timeout_secs: float = attrs.field(default=30.0, validator=_positive)
    #: How long a TOO_RECENT_* (retry_later) answer asks an event to wait.
    retry_later_secs: float = attrs.field(default=RETRY_LATER_SECS, validator=_positive)
    #: Error code → class, overriding the built-in tables (answers.py, README.md).
    error_classes: dict[str, ErrorClass] = attrs.field(factory=dict, validator=_error_classes)

    def __attrs_post_init__(self) -> None:
        if self.mode == "click_upload" and self.developer_token is None:
            raise ValueError(
                "developer_token is required with mode: click_upload (Google Ads API Center)"
            )

    @property
    def base_url(self) -> str:
        return self.endpoint or DEFAULT_ENDPOINTS[self.mode]

    @property
    def scope(self) -> str:
        return SCOPES[self.mode]

    @property
    def upload_url(self) -> str:
        """``uploadClickConversions`` of the customer (click_upload)."""
        customer = f"customers/{self.customer_id}"
        return f"{self.base_url}/{self.api_version}/{customer}:uploadClickConversions"

    @property
    def ingest_url(self) -> str:
        """``events:ingest`` (data_manager)."""
        return f"{self.base_url}/v1/events:ingest"
