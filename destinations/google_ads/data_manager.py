"""Data Manager ``events:ingest``: one request per conversion action, bad events isolated.

The Data Manager API fails fast: one event that fails validation fails its whole request and
nothing of it is processed. The events a ``BadRequest`` names are rejected and the rest are
sent again; when no event is named, the request is halved until the bad one stands alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from destinations.google_ads import answers
from destinations.google_ads.answers import DATA_MANAGER_ERRORS, ErrorClass, GoogleError
from destinations.google_ads.config import MAX_EVENTS, GoogleAdsConfig
from router.sdk import Outcome, Response, classify, dumps

#: Posts a JSON body with a fresh access token: the platform's answer, or the outcome of a
#: request that got none (transport error, refused credentials).
Post = Callable[[str, bytes, Mapping[str, str]], Awaitable[Response | Outcome]]

HEADERS: Final = {"Content-Type": "application/json"}


def request_body(
    config: GoogleAdsConfig, action: str, events: Sequence[Any], *, validate_only: bool
) -> dict[str, Any]:
    """An ``IngestEventsRequest`` for one conversion action."""
    destination: dict[str, Any] = {
        "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": config.customer_id},
        "productDestinationId": action,
    }
    if config.login_customer_id:
        destination["loginAccount"] = {
            "accountType": "GOOGLE_ADS",
            "accountId": config.login_customer_id,
        }
    body: dict[str, Any] = {"destinations": [destination], "events": list(events)}
    if any("userData" in event for event in events):
        body["encoding"] = "HEX"
    if validate_only:
        body["validateOnly"] = True
    return body


async def send(
    post: Post,
    config: GoogleAdsConfig,
    payloads: Sequence[Mapping[str, Any]],
    *,
    validate_only: bool = False,
) -> list[Outcome]:
    """One outcome per payload (``{"conversionAction", "event"}``), in order."""
    by_action: dict[str, list[int]] = {}
    for index, payload in enumerate(payloads):
        by_action.setdefault(payload["conversionAction"], []).append(index)
    chunks = [
        (action, indices[start : start + MAX_EVENTS])
        for action, indices in by_action.items()
        for start in range(0, len(indices), MAX_EVENTS)
    ]
    sender = _Sender(post, config, validate_only)
    answered = await asyncio.gather(
        *(sender.deliver(action, [payloads[i]["event"] for i in rows]) for action, rows in chunks)
    )
    outcomes: list[Outcome | None] = [None] * len(payloads)
    for (_, rows), request_outcomes in zip(chunks, answered, strict=True):
        for row, outcome in zip(rows, request_outcomes, strict=True):
            outcomes[row] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


class _Sender:
    def __init__(self, post: Post, config: GoogleAdsConfig, validate_only: bool) -> None:
        self.post = post
        self.config = config
        self.validate_only = validate_only

    async def deliver(self, action: str, events: list[Any]) -> list[Outcome]:
        body = request_body(self.config, action, events, validate_only=self.validate_only)
        answer = await self.post(self.config.ingest_url, dumps(body), HEADERS)
        if isinstance(answer, Outcome):
            return [answer] * len(events)
        if 200 <= answer.status < 300:
            # {"requestId": ...}, or {} for validateOnly; processing goes on asynchronously
            if isinstance(answers.loads(answer.body), dict):
                return [Outcome("delivered", "ok", answer.status)] * len(events)
            unreadable = Outcome("retry", "unreadable_answer", answer.status, detail=answer.excerpt)
            return [unreadable] * len(events)
        return await self._failed(action, events, answer)

    async def _failed(self, action: str, events: list[Any], response: Response) -> list[Outcome]:
        error = answers.rpc_error(response.body)
        if error is None:
            return [classify(response)] * len(events)
        failure = answers.data_manager_failure(error)
        kind = self._class(failure, response)
        if kind is None:
            return [classify(response)] * len(events)
        if kind == "rejected" and response.status == 400:
            return await self._isolate(action, events, failure, response)
        outcome = answers.settle(
            failure.errors(),
            DATA_MANAGER_ERRORS,
            self.config.error_classes,
            status=response.status,
            retry_later_secs=self.config.retry_later_secs,
            retry_after=response.retry_after,
        )
        return [outcome] * len(events)

    def _class(self, failure: answers.DataManagerFailure, response: Response) -> ErrorClass | None:
        if not failure.reasons:
            return "rejected" if response.status == 400 else None
        overrides = self.config.error_classes
        return answers.worst(
            answers.classify(GoogleError(reason), DATA_MANAGER_ERRORS, overrides)
            for reason in failure.reasons
        )

    async def _isolate(
        self,
        action: str,
        events: list[Any],
        failure: answers.DataManagerFailure,
        response: Response,
    ) -> list[Outcome]:
        """Reject what the answer blames and send the rest again; halve when it blames none."""
        named = {i: found for i, found in failure.events.items() if 0 <= i < len(events)}
        if not named and len(events) == 1:
            [error, *_] = failure.errors()
            detail = "; ".join(e.describe() for e in failure.errors())[: answers.MAX_DETAIL]
            named = {0: (error.code, detail)}
        if named:
            rest = [i for i in range(len(events)) if i not in named]
            again = await self.deliver(action, [events[i] for i in rest]) if rest else []
            outcomes = dict(zip(rest, again, strict=True))
            for i, (code, text) in named.items():
                outcomes[i] = Outcome("rejected", code.lower(), response.status, detail=text)
            return [outcomes[i] for i in range(len(events))]
        half = len(events) // 2
        first, second = await asyncio.gather(
            self.deliver(action, events[:half]), self.deliver(action, events[half:])
        )
        return first + second
