"""Sends mapped events to Meta's Conversions API, runs its test mode and checks the token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

from destinations.meta_capi.answers import classify_answer, describe, graph_error
from destinations.meta_capi.config import MetaCapiConfig
from destinations.meta_capi.mapping import SUPPORTED, map_event
from router.sdk import (
    Destination,
    Event,
    Health,
    Outcome,
    Response,
    TestAnswer,
    TransportError,
    dumps,
    transport_outcome,
)

#: Sent as ``test_event_code`` by ``send_test`` when the config has none; Events Manager shows
#: the real code to use under Test Events.
PLACEHOLDER_TEST_CODE: Final = "TEST_TAGLESS"
DAY_SECS: Final = 86_400
HEALTH_TIMEOUT_SECS: Final = 5.0


class MetaCapiDestination(Destination[MetaCapiConfig]):
    """Meta Conversions API: ``POST /{version}/{pixel}/events`` with ``{"data": [...]}``."""

    name: ClassVar[str] = "meta_capi"
    config_class: ClassVar[type[Any]] = MetaCapiConfig
    supported_events: ClassVar[frozenset[str] | None] = SUPPORTED

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    @property
    def max_event_age_secs(self) -> float:
        """The platform's age limit (it refuses older events); ``send`` checks it too."""
        return float(self.config.max_age_days * DAY_SECS)

    def map(self, event: Event) -> dict[str, Any]:
        return map_event(event)

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        """Reject events past Meta's age limit unsent, then send the rest in one request."""
        return await self._send(batch, self.config.test_event_code)

    async def send_test(self, batch: Sequence[Any]) -> TestAnswer:
        """Send with ``test_event_code`` (a placeholder when none is configured)."""
        code = self.config.test_event_code or PLACEHOLDER_TEST_CODE
        notes = [] if self.config.test_event_code else [f"no test_event_code set; sent {code}"]
        fresh = [payload for payload in batch if self._too_old(payload) is None]
        if len(fresh) < len(batch):
            notes.append(f"{len(batch) - len(fresh)} event(s) too old for Meta, not sent")
        if not fresh:
            return TestAnswer(ok=False, status=None, answer="nothing sent", messages=tuple(notes))
        try:
            response = await self._post(fresh, code)
        except TransportError as error:
            return TestAnswer(False, None, f"{error.reason}: {error}", tuple(notes))
        outcome = classify_answer(response, len(fresh), self._token)
        answer = response.excerpt.replace(self._token, "***")
        return TestAnswer(outcome.kind == "delivered", response.status, answer, tuple(notes))

    async def health(self) -> Health:
        """``GET /{version}/{pixel}?fields=id``: the token can read the pixel; sends no events."""
        url = f"{self.config.base_url}?{urlencode({'fields': 'id', **self._auth})}"
        try:
            response = await self.http.get(url, timeout_secs=HEALTH_TIMEOUT_SECS)
        except TransportError as error:
            return Health(ok=False, detail=f"{error.reason}: {error}")
        if 200 <= response.status < 300:
            return Health(ok=True, detail=f"token valid for pixel {self.config.pixel_id}")
        graph = graph_error(response.body)
        if graph is None:
            return Health(ok=False, detail=f"HTTP {response.status}")
        return Health(ok=False, detail=f"HTTP {response.status}: {describe(graph, self._token)}")

    # -- internals -----------------------------------------------------------------------------

    @property
    def _token(self) -> str:
        return self.config.access_token.reveal()

    @property
    def _auth(self) -> dict[str, str]:
        return {"access_token": self._token}

    def _too_old(self, payload: Any) -> Outcome | None:
        age = self.now() - payload["event_time"]
        if age <= self.config.max_age_days * DAY_SECS:
            return None
        days = age / DAY_SECS
        detail = f"event_time is {days:.1f} days old; Meta takes {self.config.max_age_days}"
        return Outcome("rejected", "too_old", None, None, detail)

    async def _send(self, batch: Sequence[Any], test_code: str | None) -> list[Outcome]:
        # One event past the limit fails Meta's whole request, so it never goes out.
        outcomes: list[Outcome | None] = [self._too_old(payload) for payload in batch]
        fresh = [payload for payload, old in zip(batch, outcomes, strict=True) if old is None]
        if fresh:
            try:
                response = await self._post(fresh, test_code)
                shared = classify_answer(response, len(fresh), self._token)
            except TransportError as error:
                shared = transport_outcome(error)
            outcomes = [shared if old is None else old for old in outcomes]
        return [outcome for outcome in outcomes if outcome is not None]

    async def _post(self, data: Sequence[Any], test_code: str | None) -> Response:
        body: dict[str, Any] = {"data": list(data)}
        if test_code:
            body["test_event_code"] = test_code
        # The token goes in the query string, as Meta documents; URLs are never logged.
        url = f"{self.config.base_url}/events?{urlencode(self._auth)}"
        return await self.http.post(
            url,
            dumps(body),
            {"Content-Type": "application/json"},
            timeout_secs=self.config.timeout_secs,
        )
