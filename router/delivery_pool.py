"""Delivery in separate processes (``server.delivery_processes``), supervised.

With ``delivery_processes: N`` the main process runs no lane: it deals the lanes (one per
store and destination, taken in sorted order) over N delivery processes
(``python -m router.delivery_process``), each running its share on a core of its own with its
own cache of decoded events. The main process keeps the admin listener, outbox maintenance and
(without ingest processes) ingest; it passes every wake-up of a store's lanes (a commit, a
replay) on to the delivery processes, and adds their counters to ``/metrics``.

A reload that changes a store stops every delivery process (each lane finishes or gives back
its batches within the shutdown grace) before starting them again with the new share: a lane
never runs in two processes, not even for a moment, and resumes from its durable cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from router.metrics import Metrics
from router.process_pool import ProcessPool

#: A lane: (store, destination id).
LaneKey = tuple[str, str]


def deal(lanes: Iterable[LaneKey], count: int) -> dict[int, list[LaneKey]]:
    """Each delivery process's lanes (numbered from 1): the lanes in sorted order, dealt
    round-robin, so each gets as many as the others, give or take one."""
    shares: dict[int, list[LaneKey]] = {number: [] for number in range(1, count + 1)}
    for i, lane in enumerate(sorted(lanes)):
        shares[i % count + 1].append(lane)
    return shares


def parse_lanes(text: str) -> list[LaneKey]:
    """The lanes a delivery process was given on its command line (``--lanes``)."""
    return [(str(store), str(destination)) for store, destination in orjson.loads(text)]


class DeliveryPool(ProcessPool):
    """The delivery processes of one Tagless: start, restart with new lanes, stop them."""

    kind = "delivery"
    module = "router.delivery_process"

    def __init__(
        self,
        *,
        config_dir: Path,
        count: int,
        metrics: Metrics,
        lanes: Iterable[LaneKey],
        json_logs: bool,
    ) -> None:
        super().__init__(config_dir=config_dir, count=count, metrics=metrics, json_logs=json_logs)
        self.shares = deal(lanes, count)

    def arguments(self, number: int) -> list[str]:
        return ["--lanes", orjson.dumps(self.shares[number]).decode()]

    def wake(self, store: str) -> None:
        """Events of ``store`` were committed or replayed: wake its lanes, wherever they run
        (one wake-up per store waits while a process does not read: its memory stays flat)."""
        self.broadcast({"wake": store}, coalesce=f"wake {store}")

    async def restart(self, lanes: Iterable[LaneKey], grace: float) -> None:
        """Stop every delivery process, then start them again with ``lanes`` dealt anew."""
        await self.stop_all(grace)
        self.shares = deal(lanes, self.count)
        await self.start_all()
