"""The event debugger's state of a destination and its attempts agree even when a settlement
commits between the debugger's reads (each read is a snapshot of its own)."""

from __future__ import annotations

import types
from typing import Any

from dispatch_kit import NO_JITTER, append

from router.clock import FakeClock
from router.destination import DELIVERED
from router.ops.events import _destination
from router.ops.lanes import OpsLane
from router.outbox.base import Claim
from router.outbox.sqlite import SqliteOutbox


class SettlesAfterFirstRead:
    """The outbox's insight, with the claim settled (delivered, its attempt logged) right after
    the debugger's first read: a dispatcher committing while the page is being built."""

    def __init__(self, outbox: SqliteOutbox, claim: Claim, clock: FakeClock) -> None:
        self.outbox, self.claim, self.clock = outbox, claim, clock
        self.settled = False

    async def _then_settle(self, found: Any) -> Any:
        if not self.settled:
            self.settled = True
            sends = {item.seq: (self.clock.now(), 0.01) for item in self.claim.items}
            outcomes = [(item, DELIVERED) for item in self.claim.items]
            await self.outbox.settle(self.claim, outcomes, NO_JITTER, sends=sends)
        return found

    async def delivery(self, *args: Any) -> Any:
        return await self._then_settle(await self.outbox.insight.delivery(*args))

    async def cursor(self, *args: Any) -> Any:
        return await self._then_settle(await self.outbox.insight.cursor(*args))

    async def attempts_of(self, *args: Any) -> Any:
        return await self._then_settle(await self.outbox.insight.attempts_of(*args))


async def test_a_settlement_between_the_reads_never_shows_sent_without_its_attempt(
    outbox: SqliteOutbox, clock: FakeClock
) -> None:
    """Read in the other order (attempts, then the cursor), the event showed as sent with no
    attempt; now it shows pending, or sent with its attempt."""
    await append(outbox, ["e1"])
    claim = await outbox.claim("shop", "hook", 10)
    assert claim is not None
    insight = SettlesAfterFirstRead(outbox, claim, clock)
    config = types.SimpleNamespace(id="hook", type="webhook")
    lane = OpsLane("shop", config, None, None)  # type: ignore[arg-type]
    seq = claim.items[0].seq
    answer = await _destination(insight, lane, seq, " hook ", b"{}", {}, set())
    assert insight.settled
    assert answer["decision"] in ("pending", "sent"), answer
    if answer["decision"] == "sent":
        assert [a["outcome"] for a in answer["attempts"]] == ["delivered"], answer
