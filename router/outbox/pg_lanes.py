"""Which node delivers each destination of the PostgreSQL outbox: its lane under a lease,
taken, renewed, lost; a destination's pause shared with the node that takes it next; its due
times following this node's wall clock back."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from router.clock import Clock
from router.outbox import pg_leases
from router.outbox.base import OutboxUnavailable
from router.outbox.clockwatch import WallClockWatch
from router.outbox.lanes import Lane
from router.outbox.pg_erasure import PgErasure
from router.outbox.pg_writer import Db

log = structlog.get_logger("tagless.outbox")


class PgLanes(PgErasure):
    """This node's lanes, each valid while it holds the (store, destination) lease."""

    node: str
    lease_secs: float
    clock: Clock
    _lanes: dict[tuple[str, str], Lane]
    #: (store, destination) -> (epoch of this node's lease, loop time to renew it by)
    _leases: dict[tuple[str, str], tuple[int, float]]
    #: (store, destination) -> until when the destination rests (every node's view)
    _pauses: dict[tuple[str, str], float]
    _background: set[asyncio.Task[None]]
    _wall: WallClockWatch

    @property
    def pool(self) -> asyncpg.Pool:
        raise NotImplementedError

    async def _held(self, store: str, destination: str) -> Lane | None:
        """This node's lane of (store, destination) while it holds the lease, else None."""
        key = (store, destination)
        loop_now = asyncio.get_running_loop().time()
        held = self._leases.get(key)
        lane = self._lanes.get(key)
        if held is not None and lane is not None and held[1] > loop_now:
            return lane
        epoch = await pg_leases.acquire(self.pool, store, destination, self.node, self.lease_secs)
        if epoch is None:
            self._drop(key)
            return None
        if lane is None or held is None or held[0] != epoch:
            cursor = await self.durable_cursor(store, destination)
            lane = self._lanes[key] = Lane(cursor=cursor, read_pos=cursor)
            self._pauses[key] = await self.paused_until(store, destination)
            if epoch > 1:  # it changed hands: another node stopped or died holding it
                log.info(
                    "lease_taken_over",
                    store=store,
                    destination=destination,
                    node=self.node,
                    epoch=epoch,
                    cursor=cursor,
                )
        self._leases[key] = (epoch, loop_now + self.lease_secs / 3)
        return lane

    def _drop(self, key: tuple[str, str]) -> None:
        if self._leases.pop(key, None) is not None:
            log.warning("lease_lost", store=key[0], destination=key[1], node=self.node)
        self._lanes.pop(key, None)

    async def _renew_leases(self) -> None:
        """Extend held leases every third of ``lease_secs``, so a long send keeps them."""
        while True:
            await asyncio.sleep(self.lease_secs / 3)
            try:
                kept = await pg_leases.renew(self.pool, self.node, self.lease_secs)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, OutboxUnavailable):
                continue
            loop_now = asyncio.get_running_loop().time()
            for key in list(self._leases):
                if kept.get(key) != self._leases[key][0]:
                    self._drop(key)
                else:
                    self._leases[key] = (kept[key], loop_now + self.lease_secs / 3)

    def share_pause(self, store: str, destination: str, until: float, reason: str) -> None:
        """The dispatcher rests the destination until ``until``: record it for whichever node
        delivers it next (written in the background; the dispatcher never waits on it)."""
        self._pauses[(store, destination)] = until
        task = asyncio.create_task(self.save_pause(store, destination, until, reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def forget_lane(self, store: str, destination: str) -> None:
        """Drop the lane's in-memory state once its dispatcher has stopped (a reload)."""
        self._lanes.pop((store, destination), None)
        self._leases.pop((store, destination), None)

    async def _follow_clock_back(self, now: float) -> None:
        """Move the waiting retries (and leases of retries) and the pauses of the lanes this
        node holds back by as much as its wall clock went back, and its view of every pause.

        Due times are wall times counted from the clock of the node that holds the lane: a
        retry due in ten seconds would otherwise wait the jump out too, and a pause of a
        minute last an hour longer. Only this node's lanes move: the other nodes' clocks did
        not jump. Called wherever a due time is taken from the clock, so that the latest
        time seen is the one the latest due time was counted from."""
        back = self._wall.went_back(now)
        if not back:
            return
        rows = [(back, store, destination, now) for store, destination in self._leases]
        log.warning("wall_clock_went_back", seconds=round(back, 3), node=self.node)

        async def shift(db: Db) -> None:
            await db.executemany(
                "UPDATE deliveries SET due_at = due_at - $1 WHERE store = $2"
                " AND destination = $3 AND state = 'retry' AND due_at > $4",
                rows,
            )
            await db.executemany(
                "UPDATE pauses SET until = until - $1 WHERE store = $2 AND destination = $3"
                " AND until > $4",
                rows,
            )

        if rows:
            await self._wall.follow(now, back, self.writer.write(shift))
        for key, until in self._pauses.items():
            if until > now:
                self._pauses[key] = until - back
