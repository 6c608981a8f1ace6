"""Sends batches to the Conversions API and reads its answer into one outcome per event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from router.sdk import (
    Destination,
    Event,
    Outcome,
    Response,
    TestAnswer,
    TransportError,
    classify,
    dumps,
    transport_outcome,
)
from tagless_destination_pinterest.config import PinterestConfig
from tagless_destination_pinterest.mapping import SUPPORTED_EVENTS, conversion


class PinterestDestination(Destination[PinterestConfig]):
    """Pinterest Conversions API (``events/create``, API v5)."""

    name: ClassVar[str] = "pinterest_capi"
    config_class: ClassVar[type[Any]] = PinterestConfig
    supported_events: ClassVar[frozenset[str] | None] = SUPPORTED_EVENTS
    requires_api: ClassVar[str] = "1.0"

    @property
    def max_batch_size(self) -> int:
        return int(self.config.max_batch_size)

    def map(self, event: Event) -> Any:
        return conversion(event)

    async def send(self, batch: Sequence[Any]) -> Sequence[Outcome]:
        try:
            response = await self._post(batch, test=self.config.test)
        except TransportError as error:
            return [transport_outcome(error)] * len(batch)
        return outcomes(response, len(batch))

    async def send_test(self, batch: Sequence[Any]) -> TestAnswer:
        """Pinterest's test mode: ``?test=true`` validates and answers, records nothing."""
        try:
            response = await self._post(batch, test=True)
        except TransportError as error:
            return TestAnswer(ok=False, status=None, answer=f"{error.reason}: {error}")
        results = outcomes(response, len(batch))
        messages = tuple(o.detail for o in results if o.detail)
        ok = all(o.kind == "delivered" for o in results)
        return TestAnswer(ok=ok, status=response.status, answer=response.excerpt, messages=messages)

    async def _post(self, batch: Sequence[Any], *, test: bool) -> Response:
        url = self.config.events_url + ("?test=true" if test else "")
        headers = {
            "Authorization": f"Bearer {self.config.access_token.reveal()}",
            "Content-Type": "application/json",
        }
        body = dumps({"data": list(batch)})
        return await self.http.post(url, body, headers, timeout_secs=self.config.timeout_secs)


def outcomes(response: Response, count: int) -> list[Outcome]:
    """200: each event's own ``status`` (``processed`` or ``failed``, in request order); 422
    ("not all events were processed"): the same when the answer lists them, else the batch is
    split; anything else by the shared status policy, a refusal being for the whole batch."""
    if 200 <= response.status < 300 or response.status == 422:
        per_event = _event_statuses(response, count)
        if per_event is not None:
            return per_event
        if response.status != 422:
            unreadable = Outcome(
                "retry", "unreadable_answer", response.status, None, response.excerpt
            )
            return [unreadable] * count
    shared = classify(response)
    if shared.kind == "rejected":
        shared = Outcome(
            "rejected", shared.reason, shared.status, None, shared.detail, whole_batch=True
        )
    return [shared] * count


def _event_statuses(response: Response, count: int) -> list[Outcome] | None:
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict):
        return None
    if response.status == 422:
        details = answer.get("details")
        answer = details if isinstance(details, dict) else {}
    events = answer.get("events")
    if not isinstance(events, list) or len(events) != count:
        return None
    return [_event_outcome(item, response.status) for item in events]


def _event_outcome(item: Any, status: int) -> Outcome:
    if isinstance(item, dict) and item.get("status") == "processed":
        return Outcome("delivered", "ok", status)
    message = item.get("error_message") if isinstance(item, dict) else None
    return Outcome("rejected", "pinterest_event_failed", status, None, str(message or "failed"))
