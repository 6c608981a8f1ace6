"""Sends mapped events to the GA4 Measurement Protocol, one request per client; reads answers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar, Final
from urllib.parse import urlencode, urlsplit

import orjson

from destinations.ga4.config import Ga4Config
from destinations.ga4.mapping import MAX_BODY_BYTES, SUPPORTED_EVENTS, build_request
from destinations.ga4.pipeline import PipelinedClient
from router.sdk import (
    MAX_KEPT_BODY,
    Destination,
    Event,
    Health,
    HttpClient,
    Outcome,
    Response,
    TestAnswer,
    TransportError,
    classify,
    dumps,
    transport_outcome,
)

COLLECT: Final = "/mp/collect"
DEBUG_COLLECT: Final = "/debug/mp/collect"
#: The health check's body: a syntactically valid request without any event or person in it.
HEALTH_BODY: Final = {"client_id": "0000000000.0000000000", "events": []}
_HEADERS: Final = {"Content-Type": "application/json"}
#: Request-level keys that must be equal for two events to share a request.
_PER_EVENT_KEYS: Final = ("events", "timestamp_micros")
#: /mp/collect requests are pipelined on this many kept-alive connections, with at most
#: PIPELINE_DEPTH of them unanswered on each (destinations/ga4/pipeline.py).
PIPELINE_CONNECTIONS: Final = 4
PIPELINE_DEPTH: Final = 32
#: Events one ``send`` takes (mostly one request each): the outbox claims and settles them
#: together, one claim and one commit for the whole pipeline's worth.
SEND_EVENTS: Final = PIPELINE_CONNECTIONS * PIPELINE_DEPTH


def group_requests(
    payloads: Sequence[dict[str, Any]], max_events: int
) -> list[tuple[list[int], dict[str, Any]]]:
    """Merge one-event payloads into requests: one client (and user) each, in batch order.

    Events share a request only when everything but their events is equal (client, user,
    user_data, consent); a request holds at most ``max_events`` events and stays under 130 kB.
    The request timestamp is the newest event's; each event keeps its own.
    """
    by_client: dict[bytes, list[int]] = {}
    for index, payload in enumerate(payloads):
        key = dumps({k: v for k, v in payload.items() if k not in _PER_EVENT_KEYS})
        by_client.setdefault(key, []).append(index)
    requests: list[tuple[list[int], dict[str, Any]]] = []
    for indices in by_client.values():
        chunk: list[int] = []
        body: dict[str, Any] = {}
        for index in indices:
            candidate = [*chunk, index]
            merged = merge([payloads[i] for i in candidate])
            if chunk and (len(candidate) > max_events or _size(merged) >= MAX_BODY_BYTES):
                requests.append((chunk, body))
                chunk, body = [index], merge([payloads[index]])
            else:
                chunk, body = candidate, merged
        requests.append((chunk, body))
    return requests


def merge(payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One request carrying the events of ``payloads`` (which share everything else)."""
    merged = dict(payloads[0])
    merged["timestamp_micros"] = max(p["timestamp_micros"] for p in payloads)
    merged["events"] = [event for p in payloads for event in p["events"]]
    return merged


def _size(body: dict[str, Any]) -> int:
    return len(dumps(body))


def validation_messages(response: Response) -> list[dict[str, Any]] | None:
    """The validation server's ``validationMessages``; ``None`` if the answer is not that."""
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("validationMessages"), list):
        return None
    return [m for m in answer["validationMessages"] if isinstance(m, dict)]


def describe(message: dict[str, Any]) -> str:
    """``CODE at fieldPath: description``, as kept in dead letters."""
    code = message.get("validationCode", "UNKNOWN")
    where = f" at {message['fieldPath']}" if message.get("fieldPath") else ""
    return f"{code}{where}: {message.get('description', '')}"


class Ga4Destination(Destination[Ga4Config]):
    """GA4 Measurement Protocol: recommended e-commerce events, hashed user data, consent."""

    name: ClassVar[str] = "ga4"
    config_class: ClassVar[type[Any]] = Ga4Config
    supported_events: ClassVar[frozenset[str] | None] = SUPPORTED_EVENTS

    def __init__(self, config: Ga4Config, http: HttpClient) -> None:
        super().__init__(config, http)
        #: /mp/collect only: validation, send_test and health go through the shared session
        self.collector = PipelinedClient(
            config.endpoint, connections=PIPELINE_CONNECTIONS, depth=PIPELINE_DEPTH
        )
        # the target carries api_secret: it is never logged or put into an outcome
        self._collect_target = (
            f"{urlsplit(config.endpoint).path}{COLLECT}?{urlencode(config.query())}"
        )

    @property
    def max_batch_size(self) -> int:
        """Events one ``send`` takes: enough to fill the pipeline once (one request per client,
        ``max_batch_size`` events at most each); with ``validate``, one request's worth."""
        return self.config.max_batch_size if self.config.validate else SEND_EVENTS

    @property
    def max_event_age_secs(self) -> float:
        """The platform's age limit (it refuses older events); ``send`` checks it too."""
        return self.config.max_age_hours * 3600.0

    def map(self, event: Event) -> dict[str, Any]:
        return build_request(event, app_stream=self.config.is_app_stream)

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        outcomes: list[Outcome | None] = [self._too_old(payload) for payload in batch]
        fresh = [i for i, outcome in enumerate(outcomes) if outcome is None]
        requests = group_requests([batch[i] for i in fresh], self.config.max_batch_size)
        if self.config.validate:
            answers = await asyncio.gather(
                *(self._deliver([batch[fresh[i]] for i in indices]) for indices, _ in requests)
            )
        else:  # every request written at once, pipelined: no task per request
            posted = await self._post_all([body for _, body in requests])
            answers = [
                [outcome] * len(indices)
                for (indices, _), outcome in zip(requests, posted, strict=True)
            ]
        for (indices, _), request_outcomes in zip(requests, answers, strict=True):
            for i, outcome in zip(indices, request_outcomes, strict=True):
                outcomes[fresh[i]] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def _too_old(self, payload: dict[str, Any]) -> Outcome | None:
        age_hours = (self.now() * 1e6 - payload["timestamp_micros"]) / 3.6e9
        if age_hours <= self.config.max_age_hours:
            return None
        detail = (
            f"event is {age_hours:.1f} h old; GA4 takes at most {self.config.max_age_hours:g} h"
        )
        return Outcome("rejected", "too_old", detail=detail)

    async def _deliver(self, payloads: list[dict[str, Any]]) -> list[Outcome]:
        """One request's events; with ``validate``, checked by the validation server first.

        A request that fails validation with several events is validated again event by event,
        so one bad event does not take its neighbours down with it.
        """
        body = merge(payloads)
        if self.config.validate:
            verdict = await self._validate(body)
            if isinstance(verdict, Outcome):
                return [verdict] * len(payloads)
            if verdict and len(payloads) > 1:
                alone = await asyncio.gather(*(self._deliver([p]) for p in payloads))
                return [outcome for [outcome] in alone]
            if verdict:
                detail = "; ".join(describe(m) for m in verdict)[:MAX_KEPT_BODY]
                return [Outcome("rejected", "validation_failed", detail=detail)]
        [outcome] = await self._post_all([body])
        return [outcome] * len(payloads)

    async def _validate(self, body: dict[str, Any]) -> list[dict[str, Any]] | Outcome:
        """The validation server's messages (empty: valid), or the outcome of a failed call."""
        try:
            response = await self._request(DEBUG_COLLECT, body)
        except TransportError as error:
            return transport_outcome(error)
        outcome = classify(response)
        if outcome.kind != "delivered":
            return outcome
        messages = validation_messages(response)
        if messages is None:
            return Outcome(
                "retry", "validation_unreadable", response.status, detail=response.excerpt
            )
        return messages

    async def _post_all(self, bodies: Sequence[dict[str, Any]]) -> list[Outcome]:
        """Each body's outcome; ``/mp/collect`` answers 2xx to anything that arrived: 2xx proves
        receipt only."""
        answers = await self.collector.post_all(
            self._collect_target,
            [dumps(body) for body in bodies],
            _HEADERS,
            timeout_secs=self.config.timeout_secs,
        )
        return [
            transport_outcome(a) if isinstance(a, TransportError) else classify(a) for a in answers
        ]

    async def _request(self, path: str, body: dict[str, Any]) -> Response:
        # the URL carries api_secret: it is never logged or put into an outcome
        url = f"{self.config.endpoint}{path}?{urlencode(self.config.query())}"
        return await self.http.post(
            url, dumps(body), _HEADERS, timeout_secs=self.config.timeout_secs
        )

    async def send_test(self, batch: Sequence[Any]) -> TestAnswer:
        """Every request through the validation server; nothing reaches reports."""
        statuses: list[int] = []
        answers: list[str] = []
        messages: list[str] = []
        for _, body in group_requests(list(batch), self.config.max_batch_size):
            try:
                response = await self._request(DEBUG_COLLECT, body)
            except TransportError as error:
                return TestAnswer(False, None, f"{error.reason}: {error}", tuple(messages))
            statuses.append(response.status)
            answers.append(response.excerpt)
            found = validation_messages(response)
            if found is None:
                messages.append(f"unreadable validation answer (HTTP {response.status})")
            else:
                messages.extend(describe(m) for m in found)
        ok = not messages and all(200 <= s < 300 for s in statuses)
        status = next(
            (s for s in statuses if not 200 <= s < 300), statuses[-1] if statuses else None
        )
        return TestAnswer(ok, status, "\n".join(answers), tuple(messages))

    async def health(self) -> Health:
        """The validation server with an empty request: reachability only, no event data.

        GA4's validation server does not check ``api_secret`` or the stream ID, so no request
        can prove the credentials; this proves the endpoint answers.
        """
        try:
            response = await self._request(DEBUG_COLLECT, dict(HEALTH_BODY))
        except TransportError as error:
            return Health(ok=False, detail=f"{error.reason}: {error}")
        ok = 200 <= response.status < 300
        return Health(ok=ok, detail=f"HTTP {response.status}; credentials are not checked by GA4")
