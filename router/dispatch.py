"""The dispatcher: one loop per (store, destination) that claims, maps, sends and settles."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Final, cast

import structlog

from router import privacy
from router.attempts import Attempt, AttemptObserver, AttemptState
from router.clock import Clock
from router.decoded import DecodedEvents
from router.destination import (
    Destination,
    MappingError,
    MissingIdentity,
    Outcome,
    OutcomeKind,
)
from router.metrics import Metrics
from router.outbox.base import Claim, Claimed, Outbox, OutboxError
from router.outbox.policy import RetryPolicy

log = structlog.get_logger("tagless.dispatch")

#: How long a failing destination first rests (refused credentials, outage), doubling up to
#: the policy's ``max_pause_secs`` while failures go on.
REST_INITIAL_SECS: Final = 1.0
#: Batches failing entirely in a row before an outage is assumed and the destination rests.
FAILURES_BEFORE_REST: Final = 3
#: The longest an idle dispatcher sleeps before looking at the outbox again.
IDLE_RECHECK_SECS: Final = 5.0
#: How soon an idle lane looks again at a retry that is due but leased by a claim in flight.
LEASED_RECHECK_SECS: Final = 0.05

Pair = tuple[Claimed, Any]


class _GiveBack(Exception):
    """A claimed batch that should go back to the outbox unsent (stopping while paused)."""


class LaneDispatcher:
    """Delivers one store's events to one destination, never blocking any other destination.

    It wakes on newly committed events (no polling) or when the next retry falls due, keeps up
    to ``concurrency`` batches in flight, settles every event by its own outcome, splits a batch
    the platform rejected as a whole, and rests the whole destination when the platform asks
    (429, ``Retry-After``) or refuses the credentials (401/403).
    """

    def __init__(
        self,
        outbox: Outbox,
        store: str,
        destination_id: str,
        destination: Destination[Any],
        policy: RetryPolicy,
        clock: Clock,
        *,
        concurrency: int = 4,
        metrics: Metrics | None = None,
        attempts: AttemptObserver | None = None,
        decoded: DecodedEvents | None = None,
    ) -> None:
        self.outbox = outbox
        self.store = store
        self.destination_id = destination_id
        self.destination = destination
        self.policy = policy
        self.clock = clock
        self.concurrency = concurrency
        self.paused_until = 0.0
        #: How long the current rest was meant to last: more left than that means the wall
        #: clock went back meanwhile (see :meth:`_rest_left`).
        self._rest_length = 0.0
        #: Why the destination rests (the reason code of what paused it), for the overview.
        self.pause_reason = ""
        self._rest_secs = REST_INITIAL_SECS
        self._failed_batches = 0
        #: Rests started so far: a batch sent before the latest one reports on an outage
        #: already acted on.
        self._rests = 0
        self._wake = outbox.subscribe(store)
        self._stopping = False
        self._slot_freed = asyncio.Event()
        self._stopped_signal = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = log.bind(store=store, destination=destination_id)
        self.metrics = metrics or Metrics()
        #: Told of every settled try (the store's audit table); it buffers and never awaits.
        self.attempts = attempts
        #: When each sent event's request went out and how long it took, by seq, until settled.
        self._sends: dict[int, tuple[float, float]] = {}
        #: Decoded events shared with the store's other dispatchers (pass the same one).
        self.decoded = DecodedEvents() if decoded is None else decoded
        #: The destination maps decoded events (the default ``map_stored``): they come from
        #: ``decoded``; one that maps the stored JSON itself gets it as it is.
        self._maps_events = type(destination).map_stored is Destination.map_stored
        if self._maps_events:
            self.decoded.join(store, destination.routed_events())

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Claim and send until :meth:`stop`; then return at once (see :meth:`drain`).

        Every wait ends on :meth:`stop`: ``_wake`` is cleared only right before looking for
        work, and ``_stopping`` is checked after each clear, so a stop is never swallowed.
        """
        while not self._stopping:
            if await self._rest_if_paused() or await self._wait_for_slot():
                continue
            self._wake.clear()
            if self._stopping:
                break
            try:
                claim = await self.outbox.claim(
                    self.store, self.destination_id, self.destination.max_batch_size
                )
            except OutboxError as error:
                self._log.warning("claim_failed", error=str(error))
                await self.clock.wait(self._wake, 1.0)
                continue
            if claim is None:
                await self._idle()
            elif self._stopping:  # stopped while claiming: hand it back unsent
                await self.outbox.release(claim)
            else:
                task = asyncio.create_task(self._deliver(claim))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _wait_for_slot(self) -> bool:
        """Wait while ``concurrency`` batches are in flight; True if it had to wait."""
        if len(self._tasks) < self.concurrency:
            return False
        self._slot_freed.clear()
        if len(self._tasks) >= self.concurrency and not self._stopping:
            await self._slot_freed.wait()
        return True

    def _rest_left(self) -> float:
        """Seconds left of the current rest; a rest the wall clock moved back (more left than
        it was long) starts over from now instead of stalling the lane for the jump."""
        now = self.clock.now()
        if self.paused_until - now > self._rest_length:
            self.paused_until = now + self._rest_length
        return self.paused_until - now

    async def _rest_if_paused(self) -> bool:
        remaining = self._rest_left()
        if remaining <= 0:
            self.metrics.paused[(self.store, self.destination_id)] = False
            return False
        self._wake.clear()
        if not self._stopping:
            await self.clock.wait(self._wake, remaining)
        return True

    async def _idle(self) -> None:
        due = await self.outbox.next_due(self.store, self.destination_id)
        # Woken by commits of this process; the cap also catches replays made by the CLI.
        timeout = IDLE_RECHECK_SECS if due is None else max(0.0, due - self.clock.now())
        timeout = min(timeout, IDLE_RECHECK_SECS)
        if timeout == 0.0:  # a due retry is leased by another claim: look again shortly, in
            # real time (a poll, not a due time: a test's stopped clock would never end it)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), LEASED_RECHECK_SECS)
            return
        await self.clock.wait(self._wake, timeout)

    def stop(self) -> None:
        """Stop claiming: the loop returns promptly; in-flight batches go on (see :meth:`drain`)."""
        self._stopping = True
        self._wake.set()
        self._slot_freed.set()
        self._stopped_signal.set()

    async def drain(self, grace_secs: float) -> None:
        """Wait up to ``grace_secs`` for in-flight batches, then cancel and give them back."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_secs)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- one batch ---------------------------------------------------------------------------

    async def _deliver(self, claim: Claim) -> None:
        try:
            results = await self._map_and_send(claim.items)
        except _GiveBack:
            with contextlib.suppress(OutboxError):
                await self.outbox.release(claim)
            return
        except asyncio.CancelledError:
            with contextlib.suppress(OutboxError):
                await asyncio.shield(self.outbox.release(claim))
            raise
        await self._settle(claim, results)

    async def _map_and_send(self, items: Sequence[Claimed]) -> list[tuple[Claimed, Outcome]]:
        results: list[tuple[Claimed, Outcome]] = []
        pairs: list[Pair] = []
        destination, event_of, store = self.destination, self.decoded.event, self.store
        for item in items:
            try:
                if item.without_user_data:
                    event = privacy.without_user_data(event_of(store, item.seq, item.body))
                    pairs.append((item, destination.map(event)))
                elif self._maps_events:
                    pairs.append((item, destination.map(event_of(store, item.seq, item.body))))
                else:
                    pairs.append((item, destination.map_stored(item.body)))
            except MissingIdentity as error:
                # consent removed the identity (the route's decision): skipped, not dead
                kind: OutcomeKind = "skipped" if item.without_user_data else "rejected"
                results.append((item, Outcome(kind, error.reason, detail=str(error))))
            except MappingError as error:
                results.append((item, Outcome("rejected", error.reason, detail=str(error))))
            except Exception as error:  # a mapping bug: dead-letter it, never loop on it
                self._log.error(
                    "mapping_crashed", event_id=item.event_id, error=type(error).__name__
                )
                reason = f"mapping_crashed: {type(error).__name__}"
                results.append((item, Outcome("rejected", reason, detail=repr(error))))
        if pairs:
            results.extend(await self._send(pairs))
        return results

    async def _send(self, pairs: list[Pair]) -> list[tuple[Claimed, Outcome]]:
        await self._rest_before_send()
        sent_in = self._rests
        started = self.clock.now()
        try:
            outcomes = list(await self.destination.send([payload for _, payload in pairs]))
        except Exception as error:  # an adapter bug: classified errors never raise
            self._log.error("send_crashed", error=type(error).__name__, events=len(pairs))
            crashed = Outcome(
                "rejected", f"send_crashed: {type(error).__name__}", detail=repr(error)
            )
            outcomes = [crashed] * len(pairs)
        if len(outcomes) != len(pairs):
            bad = Outcome(
                "rejected", "bad_outcome_count", detail=f"{len(outcomes)} for {len(pairs)}"
            )
            outcomes = [bad] * len(pairs)
        # Events refused together for one bad event among them are split until it is alone,
        # even when the adapter settled others of the batch by themselves (Meta's too-old
        # events, never sent): those keep their own outcomes.
        together = [i for i, o in enumerate(outcomes) if o.whole_batch and o.kind == "rejected"]
        if len(together) > 1:
            half = len(together) // 2
            self._log.info("batch_split", events=len(together), reason=outcomes[together[0]].reason)
            split = await self._send([pairs[i] for i in together[:half]])
            split += await self._send([pairs[i] for i in together[half:]])
            apart = set(together)
            return [(pairs[i][0], o) for i, o in enumerate(outcomes) if i not in apart] + split
        self._note_pauses(outcomes, sent_in)
        took = (started, self.clock.now() - started)
        self._sends.update((item.seq, took) for item, _ in pairs)
        return [(item, outcome) for (item, _), outcome in zip(pairs, outcomes, strict=True)]

    async def _rest_before_send(self) -> None:
        """A batch claimed before the destination was paused waits out the pause unsent.

        If Tagless stops meanwhile, the batch is given back rather than sent.
        """
        while (remaining := self._rest_left()) > 0:
            if self._stopping:
                raise _GiveBack
            await self.clock.wait(self._stopped_signal, remaining)

    def _note_pauses(self, outcomes: Sequence[Outcome], sent_in: int) -> None:
        """Rest the whole destination when the platform says so or keeps failing.

        ``Retry-After`` (on 429, 503, ...) is the platform's own word and rests it that long, up
        to the policy's ``max_pause_secs``: then the next batch probes the platform, and one
        still asking for longer rests it for the cap again. Refused credentials (401/403) or a
        429 without a wait rest it at once; batches that fail entirely (5xx, timeouts) rest it
        after ``FAILURES_BEFORE_REST`` in a row. The rest doubles (up to the same cap) while
        failures go on and resets on the first delivery: during an outage new events wait
        unsent instead of spending their attempts, while an occasional error among successes
        costs only its own batch a retry.

        One outage counts once, not once per batch in flight: a batch sent before the latest
        rest began (``sent_in`` is the rest count when it was sent) only tells what that rest
        already acted on, so it neither counts as a failure, nor lengthens the rest, nor resets
        it; only its ``Retry-After`` may still extend the current rest. The rest doubles when a
        batch sent after it ended fails too.
        """
        current = sent_in == self._rests
        if any(o.kind == "delivered" for o in outcomes):
            if current:
                self._rest_secs = REST_INITIAL_SECS
                self._failed_batches = 0
            return
        waits = [o for o in outcomes if o.retry_after is not None and not o.event_delay]
        told = max((o.retry_after for o in waits if o.retry_after is not None), default=None)
        cause = next((o for o in outcomes if o.pause), waits[0] if waits else None)
        if not current:
            if told is not None and cause is not None:
                self._rest_until(self.policy.capped_wait(told), cause, told)
            return
        platform_failed = all(o.kind == "retry" and not o.event_delay for o in outcomes)
        if cause is None and outcomes and platform_failed:
            self._failed_batches += 1
            if self._failed_batches >= FAILURES_BEFORE_REST:
                cause = outcomes[0]
        if cause is None:
            return
        cap = self.policy.max_pause_secs
        if told is not None:
            seconds = self.policy.capped_wait(told)
        else:
            seconds = min(self._rest_secs, cap)
            self._rest_secs = min(self._rest_secs * 2, cap)
        self._rests += 1
        self._rest_until(seconds, cause, told)

    def _rest_until(self, seconds: float, cause: Outcome, told: float | None) -> None:
        """Pause the destination ``seconds`` from now, unless it already rests longer."""
        until = self.clock.now() + seconds
        if until > self.paused_until:
            self.paused_until, self._rest_length = until, seconds
            self.pause_reason = cause.reason
            self.metrics.paused[(self.store, self.destination_id)] = True
            share = getattr(self.outbox, "share_pause", None)  # a shared outbox: every node
            if share is not None:
                share(self.store, self.destination_id, until, cause.reason)
            self._log.warning(
                "destination_paused",
                reason=cause.reason,
                status=cause.status,
                seconds=seconds,
                asked_secs=told,
            )

    async def _settle(self, claim: Claim, results: list[tuple[Claimed, Outcome]]) -> None:
        pop = self._sends.pop
        sends = {seq: sent for seq in (item.seq for item, _ in results) if (sent := pop(seq, None))}
        while True:
            try:
                states = await self.outbox.settle(claim, results, self.policy, sends=sends)
                break
            except OutboxError as error:  # e.g. disk full: the claim must not be lost
                self._log.error("settle_failed", error=str(error), events=len(results))
                await self.clock.wait(asyncio.Event(), error.retry_after)
        if "retry" in states:  # the loop may be idle on a due time computed before this one
            self._wake.set()
        self._count(results, states, sends)

    def _count(
        self,
        results: list[tuple[Claimed, Outcome]],
        states: list[str],
        sends: dict[int, tuple[float, float]],
    ) -> None:
        tally = {"delivered": 0, "retry": 0, "dead": 0}
        for (item, outcome), state in zip(results, states, strict=True):
            if state == "skipped":
                self.metrics.skipped_consent[(self.store, self.destination_id, outcome.reason)] += 1
                self._log.info("delivery_skipped", event_id=item.event_id, reason=outcome.reason)
                continue
            tally[state] += 1
            if state == "retry":
                self._log.info(
                    "delivery_retry",
                    event_id=item.event_id,
                    attempt=self.policy.attempts_after(item.attempts, outcome),
                    reason=outcome.reason,
                    status=outcome.status,
                )
            elif state == "dead":
                self._log.warning(
                    "delivery_dead",
                    event_id=item.event_id,
                    attempt=self.policy.attempts_after(item.attempts, outcome),
                    reason=outcome.reason,
                    status=outcome.status,
                )
        for state, count in tally.items():
            if count:
                self.metrics.deliveries[(self.store, self.destination_id, state)] += count
        if self.attempts is not None:
            self._observe(self.attempts, results, states, sends)

    def _observe(
        self,
        observe: AttemptObserver,
        results: list[tuple[Claimed, Outcome]],
        states: list[str],
        sends: dict[int, tuple[float, float]],
    ) -> None:
        """Tell the observer of each settled try; an observer bug never stops delivery."""
        for (item, outcome), state in zip(results, states, strict=True):
            if state == "skipped":  # never sent: no attempt to record
                continue
            sent = sends.get(item.seq)
            attempt = Attempt(
                store=self.store,
                destination=self.destination_id,
                destination_type=self.destination.name,
                event_id=item.event_id,
                attempt=self.policy.attempts_after(item.attempts, outcome),
                outcome=cast(AttemptState, state),  # settle answers only these three
                status=outcome.status,
                reason=outcome.reason,
                latency_ms=None if sent is None else sent[1] * 1000.0,
                attempted_at=self.clock.now() if sent is None else sent[0],
            )
            try:
                observe(attempt)
            except Exception as error:  # a sink bug: log it, deliveries go on
                self._log.error("attempt_observer_crashed", error=type(error).__name__)
