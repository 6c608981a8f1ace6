"""Sends batches of mapped events to Spotify's ``/capi-direct/events/`` and reads its answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import orjson

from destinations.spotify_capi.config import SpotifyCapiConfig
from destinations.spotify_capi.mapping import SUPPORTED_EVENTS, conversion_event, event_time
from router.sdk import (
    MAX_KEPT_BODY,
    Destination,
    Event,
    Health,
    HttpClient,
    Outcome,
    Response,
    TransportError,
    classify,
    dumps,
    transport_outcome,
)

#: Keys of a JSON error answer worth keeping. Spotify documents none but ``sp_trace_id``
#: (its troubleshooting guide), so these are the usual suspects; else the raw excerpt.
ERROR_KEYS: Final = ("message", "error", "error_description", "errors", "sp_trace_id")
#: One ``send`` posts up to this many requests of ``max_batch_size`` events at once: the
#: outbox claims and settles them together (one claim and one commit per send, not per request).
REQUESTS_PER_SEND: Final = 4


class SpotifyCapiDestination(Destination[SpotifyCapiConfig]):
    """Spotify Ads Manager Conversions API: ``{"conversion_events": {...}}`` per batch."""

    name: ClassVar[str] = "spotify_capi"
    config_class: ClassVar[type[Any]] = SpotifyCapiConfig
    supported_events: ClassVar[frozenset[str] | None] = SUPPORTED_EVENTS

    def __init__(self, config: SpotifyCapiConfig, http: HttpClient) -> None:
        super().__init__(config, http)
        #: Events mapped without ``ip_address`` because the IP was not a public customer IP,
        #: by its class (private, loopback, cdn, missing...). Counts mappings, so a retried
        #: event counts again; the total is ``sum(ip_withheld.values())``.
        self.ip_withheld: Counter[str] = Counter()
        #: Events whose ``event_time`` was ahead of our clock and sent as "now" instead.
        self.time_clamped = 0

    @property
    def max_batch_size(self) -> int:
        """Events one ``send`` takes: ``REQUESTS_PER_SEND`` requests' worth."""
        return self.config.max_batch_size * REQUESTS_PER_SEND

    def map(self, event: Event) -> dict[str, Any]:
        payload = conversion_event(event, self.config)
        if "ip_address" not in payload["user_data"]:
            self.ip_withheld[event.client_ip_class if event.client_ip else "missing"] += 1
        return payload

    def counters(self) -> Mapping[str, int]:
        """Events sent without ``ip_address``, by the class of the IP withheld; times clamped."""
        tallies = {f"ip_withheld_{ip_class}": n for ip_class, n in self.ip_withheld.items()}
        return {**tallies, "time_clamped": self.time_clamped}

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        """One request per ``max_batch_size`` events, all at once; each event gets its
        request's outcome."""
        size = self.config.max_batch_size
        parts = [batch[start : start + size] for start in range(0, len(batch), size)]
        answers = await asyncio.gather(*(self._post(part) for part in parts))
        return [outcome for part_outcomes in answers for outcome in part_outcomes]

    async def _post(self, batch: Sequence[Any]) -> list[Outcome]:
        events = self._not_in_future(batch)
        body = dumps(
            {
                "conversion_events": {
                    "capi_connection_id": self.config.connection_id,
                    "events": events,
                }
            }
        )
        try:
            response = await self.http.post(
                self.config.events_url, body, self._headers(), timeout_secs=self.config.timeout_secs
            )
        except TransportError as error:
            return [transport_outcome(error)] * len(batch)
        return [self._outcome(response)] * len(batch)

    async def health(self) -> Health:
        """Spotify documents no health or validation endpoint, and an empty ``events`` list is
        not documented as safe, so nothing is sent."""
        return Health(ok=True, detail="no health endpoint documented; nothing sent")

    # send_test stays the base one: Spotify documents no test mode.

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.token.reveal()}",
            "Content-Type": "application/json",
        }

    def _not_in_future(self, batch: Sequence[Any]) -> list[Any]:
        """Spotify wants ``event_time`` in the past: a time ahead of our clock is sent as now.

        Both strings have the same fixed-width UTC form, so they compare as text.
        """
        now = event_time(datetime.fromtimestamp(self.now(), UTC))
        events: list[Any] = []
        for payload in batch:
            if payload["event_time"] > now:
                payload = {**payload, "event_time": now}
                self.time_clamped += 1
            events.append(payload)
        return events

    def _outcome(self, response: Response) -> Outcome:
        """The shared status policy; a refusal names the platform's message, never the token.

        Spotify answers for the request as a whole, so a 4xx rejection marks
        the whole batch and the dispatcher splits it to find the bad event.
        """
        outcome = classify(response)
        if outcome.kind == "delivered":
            return outcome
        detail = error_detail(response, self.config.token.reveal())
        return Outcome(
            outcome.kind,
            outcome.reason,
            outcome.status,
            outcome.retry_after,
            detail,
            pause=outcome.pause,
            whole_batch=outcome.kind == "rejected",
        )


def error_detail(response: Response, token: str) -> str:
    """``HTTP 400: message=...; sp_trace_id=...`` from a JSON answer, else the raw excerpt."""
    kept = ""
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict):
        parts = [f"{key}={_short(answer[key])}" for key in ERROR_KEYS if key in answer]
        kept = "; ".join(parts)
    text = f"HTTP {response.status}: {kept or response.excerpt}"
    if token:
        text = text.replace(token, "***")
    return text[:MAX_KEPT_BODY]


def _short(value: object) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:500]
