"""The shared outbox: PostgreSQL through asyncpg, for several Tagless nodes behind one load
balancer. Same promise and shape as SQLite (events written once, a cursor per destination,
rows only for retries and dead letters); a lease keeps one dispatcher per destination."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Final

import asyncpg
import structlog

from router.clock import Clock, SystemClock
from router.destination import Outcome
from router.outbox import pg_leases
from router.outbox.attempts_log import Sends
from router.outbox.base import Claim, Claimed, NewEvent, OutboxUnavailable
from router.outbox.clockwatch import WallClockWatch
from router.outbox.lanes import Lane, Wakeups, claim_in_turn
from router.outbox.pg_insight import PgInsight
from router.outbox.pg_lanes import PgLanes
from router.outbox.pg_room import PgAdmission
from router.outbox.pg_schema import prepare
from router.outbox.pg_writer import CHANNEL, Db, PgGroupWriter
from router.outbox.policy import RetryPolicy
from router.outbox.settling import plan

log = structlog.get_logger("tagless.outbox")

_UPSERT_DELIVERY: Final = (
    "INSERT INTO deliveries (store, destination, seq, state, attempts, first_attempt_at, due_at,"
    " reason, last_status, detail, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    " ON CONFLICT (store, destination, seq) DO UPDATE SET state = excluded.state,"
    " attempts = excluded.attempts, due_at = excluded.due_at, reason = excluded.reason,"
    " last_status = excluded.last_status, detail = excluded.detail,"
    " updated_at = excluded.updated_at"
)
_DELETE_DELIVERY: Final = (
    "DELETE FROM deliveries WHERE store = $1 AND destination = $2 AND seq = $3"
)
_SAVE_CURSOR: Final = (
    "INSERT INTO cursors (store, destination, seq) VALUES ($1, $2, $3)"
    " ON CONFLICT (store, destination) DO UPDATE SET seq = greatest(cursors.seq, excluded.seq)"
)
_INSERT_ATTEMPT: Final = (
    "INSERT INTO attempts (store, destination, at, seq_lo, seq_hi, seqs, status, latency_ms,"
    " delivered, retrying, dead, skipped, reason, answer, next_retry_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)
#: The routed events after a position, and how far the store's log reaches (one snapshot):
#: fewer than ``limit`` routed events means every event up to ``top`` was looked at.
_NEXT_EVENTS: Final = (
    "SELECT t.top, e.seq, e.event_id, e.received_at, e.routes, e.body"
    " FROM (SELECT max(seq) AS top FROM events WHERE store = $1 AND seq > $2) t"
    " LEFT JOIN LATERAL (SELECT seq, event_id, received_at, routes, body FROM events"
    " WHERE store = $1 AND seq > $2 AND (strpos(routes, $3) > 0 OR strpos(routes, $4) > 0)"
    " ORDER BY seq LIMIT $5) e ON true ORDER BY e.seq"
)
_LEASE_RETRIES: Final = (
    "UPDATE deliveries d SET due_at = $4 FROM (SELECT seq FROM deliveries WHERE store = $1"
    " AND destination = $2 AND state = 'retry' AND due_at <= $3 ORDER BY due_at LIMIT $5"
    " FOR UPDATE SKIP LOCKED) s WHERE d.store = $1 AND d.destination = $2 AND d.seq = s.seq"
    " RETURNING d.seq, d.attempts, d.first_attempt_at"
)


class PostgresOutbox(Wakeups, PgLanes):
    """The :class:`~router.outbox.base.Outbox` on a PostgreSQL database shared by nodes.

    Appends go through a :class:`PgGroupWriter` (one transaction for what queued meanwhile;
    every node's appends take one advisory lock, so seqs become visible in order). Each
    (store, destination) is delivered by the node holding its lease (``leases``); a node
    that dies loses it after ``lease_secs`` and another resumes from the durable cursor,
    re-sending what was in flight (at least once, same ``event_id``). Commits ``NOTIFY``
    every node, whose dispatchers wake at once.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        max_pending_events: int = 200_000,
        lease_secs: float = 60.0,
        node: str | None = None,
        pool_size: int = 8,
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self.clock = clock or SystemClock()
        self.lease_secs = lease_secs
        #: This process among the nodes: host, pid and a random part (a reused pid differs).
        self.node = node or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self.writer = PgGroupWriter()
        self.writer.on_commit = self.committed
        self.room = PgAdmission(self.writer, self.clock, max_pending_events)
        self.backlog = self.room.backlog
        self._signals: dict[str, list[asyncio.Event]] = {}
        self._lanes: dict[tuple[str, str], Lane] = {}
        #: (store, destination) -> (epoch of this node's lease, loop time to renew it by)
        self._leases: dict[tuple[str, str], tuple[int, float]] = {}
        self._epochs: dict[int, int] = {}
        #: (store, destination) -> until when the destination rests (every node's view)
        self._pauses: dict[tuple[str, str], float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._wall = WallClockWatch()
        self._tokens = itertools.count(1)
        self._renewer: asyncio.Task[None] | None = None
        #: The admin pages' read-only queries (every node's events).
        self.insight = PgInsight(self._read)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise OutboxUnavailable("the outbox is closed")
        return self._pool

    async def open(self) -> None:
        """Connect, bring the schema up to date (refusing a newer one), listen for commits."""
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise OutboxUnavailable(f"{type(error).__name__}: {error}") from error
        try:
            async with self._pool.acquire() as db:
                await prepare(db, self.where)
            self._listener = await asyncpg.connect(self.url)
            await self._listener.add_listener(CHANNEL, self._heard)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            await self._pool.close()
            self._pool = None
            raise OutboxUnavailable(f"{type(error).__name__}: {error}") from error
        except BaseException:
            await self._pool.close()
            self._pool = None
            raise
        self.writer.start(self._pool)
        self._renewer = asyncio.create_task(self._renew_leases(), name="outbox-leases")

    async def close(self) -> None:
        """Commit what is queued, give up this node's leases and disconnect."""
        await self.writer.close()
        if self._background:
            await asyncio.wait(set(self._background), timeout=5.0)
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._pool is not None:
            with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                await pg_leases.give_up(self._pool, self.node)
        if self._listener is not None:
            with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                await self._listener.close()
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Store events durably; return after their commit (see :class:`Outbox`)."""
        if events:
            self.room.check(events)
        await self.writer.append(events)

    # -- wake-ups ----------------------------------------------------------------------------

    def _heard(self, _connection: Any, _pid: int, _channel: str, store: object) -> None:
        self._notify(str(store))

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return list(await self.pool.fetch(sql, *params))
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as error:
            raise OutboxUnavailable(f"the outbox could not be read: {error}") from error

    # -- claiming ----------------------------------------------------------------------------

    async def claim(self, store: str, destination: str, limit: int) -> Claim | None:
        """Claim due retries or the next routed events, while this node holds the lease."""
        lane = await self._held(store, destination)
        if lane is None:
            return None
        epoch = self._leases[(store, destination)][0]
        now = self.clock.now()
        await self._follow_clock_back(now)
        if self._pauses.get((store, destination), 0.0) > now:
            return None  # another node paused it (429, credentials) before this one took over
        claim = await claim_in_turn(
            lane,
            lambda: self._claim_new(lane, store, destination, limit),
            lambda: self._claim_retries(store, destination, limit),
        )
        if claim is not None:
            self._epochs[claim.token] = epoch
        return claim

    async def _claim_retries(self, store: str, destination: str, limit: int) -> Claim | None:
        now = self.clock.now()
        claimed = await self._read(
            _LEASE_RETRIES, (store, destination, now, now + self.lease_secs, limit)
        )
        if not claimed:
            return None
        meta = {row[0]: (row[1], row[2]) for row in claimed}
        rows = await self._read(
            "SELECT seq, event_id, received_at, body, routes FROM events"
            " WHERE seq = ANY($1::bigint[]) ORDER BY seq",
            (list(meta),),
        )
        marked = f" {destination}! "
        items = tuple(
            Claimed(seq, event_id, received_at, body, *meta[seq], marked in routes)
            for seq, event_id, received_at, body, routes in rows
        )
        return Claim(store, destination, items, next(self._tokens), is_retry=True)

    async def _claim_new(
        self, lane: Lane, store: str, destination: str, limit: int
    ) -> Claim | None:
        plain, marked = f" {destination} ", f" {destination}! "
        rows = await self._read(_NEXT_EVENTS, (store, lane.read_pos, plain, marked, limit))
        if not rows or rows[0][0] is None:
            return None
        items = [
            Claimed(seq, event_id, received_at, body, without_user_data=marked in routes)
            for _, seq, event_id, received_at, routes, body in rows
            if seq is not None
        ]
        hi = items[-1].seq if len(items) == limit else int(rows[0][0])
        token = next(self._tokens)
        lane.hand_out(token, hi, len(items))
        return Claim(store, destination, tuple(items), token, is_retry=False)

    # -- settling ----------------------------------------------------------------------------

    async def settle(
        self,
        claim: Claim,
        outcomes: Sequence[tuple[Claimed, Outcome]],
        policy: RetryPolicy,
        *,
        sends: Sends | None = None,
    ) -> list[str]:
        """Record every event's outcome, the attempts log's rows and the cursor, in one
        transaction that commits only while this node still holds the claim's lease."""
        now = self.clock.now()
        await self._follow_clock_back(now)  # every time a due time is taken from is seen
        planned = plan(claim, outcomes, policy, sends, now)
        epoch = self._epochs.pop(claim.token, None)
        key = (claim.store, claim.destination)
        lane = self._lanes.get(key)
        cursor, passed = None, 0
        if not claim.is_retry and lane is not None and self._leases.get(key, (None,))[0] == epoch:
            cursor, passed = lane.settle(claim.token)

        async def record(db: Db) -> bool:
            if epoch is None or not await pg_leases.holds(db, *key, self.node, epoch):
                return False
            if planned.upserts:
                await db.executemany(_UPSERT_DELIVERY, planned.upserts)
            if planned.attempts:
                await db.executemany(_INSERT_ATTEMPT, planned.attempts)
            if planned.deletes:
                await db.executemany(_DELETE_DELIVERY, planned.deletes)
            if cursor is not None:
                await db.execute(_SAVE_CURSOR, claim.store, claim.destination, cursor)
            return True

        if not await self.writer.write(record):
            # another node took the lease: it resumes from the durable cursor and sends these
            # again (at least once); nothing of this claim is recorded
            self._drop(key)
            return planned.states
        retrying = planned.retrying_change(claim.is_retry)
        self.backlog.settled(claim.store, claim.destination, passed=passed, retrying=retrying)
        return planned.states

    async def release(self, claim: Claim) -> None:
        """Give a claim back unsent: retries fall due now; new events go to the lane's next
        holder (this node stops handing out the lane's new events)."""
        self._epochs.pop(claim.token, None)
        if not claim.is_retry:
            lane = self._lanes.get((claim.store, claim.destination))
            if lane is not None:
                lane.release()
            return
        now = self.clock.now()
        rows = [(now, claim.store, claim.destination, item.seq) for item in claim.items]
        with contextlib.suppress(OutboxUnavailable):
            await self._follow_clock_back(now)
            await self.pool.executemany(
                "UPDATE deliveries SET due_at = $1 WHERE store = $2 AND destination = $3"
                " AND seq = $4",
                rows,
            )

    # -- reading state -----------------------------------------------------------------------

    async def next_due(self, store: str, destination: str) -> float | None:
        """When the earliest retry of ``destination`` falls due, if any."""
        rows = await self._read(
            "SELECT min(due_at) FROM deliveries WHERE store = $1 AND destination = $2"
            " AND state = 'retry'",
            (store, destination),
        )
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    async def refresh_backlog(self, store: str, destinations: Sequence[str]) -> None:
        """Count each destination's undelivered events afresh (every node's, in the database)."""
        await self.room.refresh(store, destinations)

    async def unready(self, stores: Iterable[str]) -> str | None:
        """Why ingest cannot commit now (a short code), or None."""
        return await self.room.unready(stores)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}@{tail}"
