"""Maps events to the webhook's JSON and POSTs batches of them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from destinations.webhook.config import WebhookConfig
from router.sdk import (
    CanonicalJson,
    Destination,
    Health,
    Outcome,
    Response,
    Secret,
    TestAnswer,
    TransportError,
    classify,
    dumps,
    transport_outcome,
)

SIGNATURE_HEADER = "X-Tagless-Signature"
TEST_HEADER = "X-Tagless-Test"


def sign(secret: Secret, body: bytes, timestamp: int) -> str:
    """``t=<unix>,v1=<hex>``: HMAC-SHA256 over ``"{t}.{body}"``, verifiable like Stripe's."""
    mac = hmac.new(secret.reveal().encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookDestination(CanonicalJson, Destination[WebhookConfig]):
    """POSTs ``{"events": [canonical event, ...]}`` to the configured URL."""

    name: ClassVar[str] = "webhook"
    config_class: ClassVar[type[Any]] = WebhookConfig

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        try:
            response = await self._post(batch, {})
        except TransportError as error:
            return [transport_outcome(error)] * len(batch)
        outcome = classify(response)
        if outcome.kind == "rejected":  # the receiver answered for the batch as a whole
            outcome = Outcome(
                "rejected", outcome.reason, outcome.status, None, outcome.detail, whole_batch=True
            )
        return [outcome] * len(batch)

    async def _post(self, batch: Sequence[Any], extra: dict[str, str]) -> Response:
        body = dumps({"events": list(batch)})
        headers = {"Content-Type": "application/json", **self.config.headers, **extra}
        if self.config.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body, int(time.time()))
        return await self.http.post(
            self.config.url, body, headers, timeout_secs=self.config.timeout_secs
        )

    async def send_test(self, batch: Sequence[Any]) -> TestAnswer:
        """POSTs the batch with ``X-Tagless-Test: 1`` so the receiver can tell a test apart."""
        try:
            response = await self._post(batch, {TEST_HEADER: "1"})
        except TransportError as error:
            return TestAnswer(ok=False, status=None, answer=f"{error.reason}: {error}")
        ok = 200 <= response.status < 300
        return TestAnswer(ok=ok, status=response.status, answer=response.excerpt)

    async def health(self) -> Health:
        """An empty batch: proves the receiver answers, sends no event data."""
        body = dumps({"events": []})
        try:
            response = await self.http.post(
                self.config.url, body, {"Content-Type": "application/json"}, timeout_secs=5.0
            )
        except TransportError as error:
            return Health(ok=False, detail=f"{error.reason}: {error}")
        return Health(ok=200 <= response.status < 300, detail=f"HTTP {response.status}")
