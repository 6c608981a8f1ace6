"""Settings of the webhook destination."""

from __future__ import annotations

import attrs

from router.sdk import Secret


def _http_url(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _batch_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= 10_000:
        raise ValueError(f"expected 1 to 10000, got {value}")


@attrs.frozen
class WebhookConfig:
    """``url`` receives ``{"events": [...]}``; ``secret`` turns on ``X-Tagless-Signature``."""

    #: `http://` or `https://` URL receiving the batches
    url: str = attrs.field(validator=_http_url)
    #: HMAC key for `X-Tagless-Signature` (use `${ENV}`)
    secret: Secret | None = None
    #: events per request, 1 to 10,000
    max_batch_size: int = attrs.field(default=500, validator=_batch_size)
    #: time for one request, connection included
    timeout_secs: float = 10.0
    #: extra request headers
    headers: dict[str, str] = attrs.field(factory=dict)
