"""One event routed to two destinations, each left waiting for a retry by its own outbox."""

from __future__ import annotations

from typing import Any

from router import codec
from router.destination import Outcome
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.testing.events import make_event

#: Back-off without jitter: a first retry falls due exactly 1 s after its settlement.
NO_JITTER = RetryPolicy(max_attempts=8, jitter=lambda top: top)


async def retry_on_each(appender: Any, at: float, *deliverers: tuple[Any, str]) -> None:
    """``appender`` stores event "a" routed to every destination of ``deliverers`` at ``at``;
    each (outbox, destination) then claims it and settles it as a 503: a retry due 1 s later."""
    body = codec.encode(make_event(event_id="a"))
    routes = tuple(destination for _, destination in deliverers)
    await appender.append([NewEvent("shop", "a", at, routes, body)])
    for outbox, destination in deliverers:
        claim = await outbox.claim("shop", destination, 10)
        assert claim is not None
        failed = Outcome("retry", "http_503", 503)
        await outbox.settle(claim, [(claim.items[0], failed)], NO_JITTER)
