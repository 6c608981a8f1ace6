"""The overview's data: per store and destination over a window, what came in and what became
of it, delivery latency, the queue, pauses; the outbox's disk use, retention and last reload."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from router.ops.lanes import OpsLane, lanes_of, why_not_routed
from router.ops.retention import retention_settings
from router.ops.window import window_secs


async def overview(tagless: Any, window: str) -> dict[str, Any]:
    """Counts of ``window`` (``1h``, ``24h``, ``7d``) per store and destination; the
    outbox's disk use, its retention settings and how the last config reload went."""
    seconds = window_secs(window)
    now = tagless.clock.now()
    insight = tagless.outbox.insight
    since_seq = await insight.first_id_since("events", now - seconds)
    since_id = await insight.first_id_since("attempts", now - seconds)
    paused = {
        (lane.store, lane.destination_id): lane for lane in getattr(tagless, "dispatchers", ())
    }
    stores = []
    for config in tagless.config.stores:
        lanes = lanes_of(tagless, config.store)
        routes = Counter[str]()
        received = 0
        for text, count in await insight.routes_since(config.store, since_seq):
            received += count
            routes.update({route.rstrip("!"): count for route in text.split()})
        destinations = [
            await _destination(
                tagless, lane, received, routes, since_seq, since_id, now,
                paused.get((config.store, lane.config.id)),
            )
            for lane in lanes
        ]  # fmt: skip
        stores.append({"store": config.store, "received": received, "destinations": destinations})
    path = Path(tagless.config.outbox.path)
    return {
        "window": window,
        "generated_at": now,
        "stores": stores,
        "outbox": await _outbox_size(tagless, path),
        "retention": retention_settings(tagless.config.outbox),
        "config": {"last_reload": _last_reload(tagless)},
    }


async def _destination(
    tagless: Any,
    lane: OpsLane,
    received: int,
    routes: Counter[str],
    since_seq: int,
    since_id: int,
    now: float,
    dispatcher: Any | None,
) -> dict[str, Any]:
    insight = tagless.outbox.insight
    store, dest = lane.store, lane.config.id
    delivered, _, dead, skipped_send = await insight.attempt_totals(store, dest, since_id)
    filtered, skipped = await _not_routed(insight, lane, since_seq)
    latencies = await insight.latencies(store, dest, since_id)
    # after the attempts: a settle seen there is seen here too (one commit writes both)
    pending, retrying, oldest = await insight.queue(store, dest)
    return {
        "id": dest,
        "type": lane.config.type,
        "received": received,
        "routed": routes[dest],
        "delivered": delivered,
        "retrying": retrying,
        "dead": dead,
        "filtered": filtered,
        "skipped_consent": skipped + skipped_send,
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95)},
        "depth": pending + retrying,
        "oldest_pending_age_s": None if oldest is None else max(0.0, now - oldest),
        "paused": _paused(dispatcher, now),
    }


async def _not_routed(insight: Any, lane: OpsLane, since_seq: int) -> tuple[int, int]:
    """Events of the window not routed to the lane: (filtered or unsupported, skipped by
    consent), each kind of event decided once from today's config."""
    filtered = skipped = 0
    for values, count in await insight.unrouted_since(lane.store, lane.config.id, since_seq):
        name, source_name, consent = orjson.loads(values)
        decision, _ = why_not_routed(lane.route, name or "", source_name or "", consent)
        if decision == "skipped_consent":
            skipped += count
        else:
            filtered += count
    return filtered, skipped


def _percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of sorted ``values``; None without any."""
    if not values:
        return None
    rank = max(1, -(-len(values) * share // 1))  # ceil
    return values[int(rank) - 1]


def _paused(dispatcher: Any | None, now: float) -> dict[str, Any] | None:
    if dispatcher is None or dispatcher.paused_until <= now:
        return None
    return {"reason": dispatcher.pause_reason, "until": dispatcher.paused_until}


async def _outbox_size(tagless: Any, path: Path) -> dict[str, Any]:
    """Where the outbox is and the disk it takes (PostgreSQL: the database's size)."""
    if getattr(tagless.outbox, "url", None) is not None:
        return {"disk_bytes": await tagless.outbox.disk_bytes(), "path": tagless.outbox.where}
    return {"disk_bytes": _disk_bytes(path), "path": str(path)}


def _disk_bytes(path: Path) -> int:
    """The outbox file with its write-ahead log and shared-memory index."""
    total = 0
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            total += file.stat().st_size
        except OSError:
            continue
    return total


def _last_reload(tagless: Any) -> dict[str, Any] | None:
    last = getattr(tagless, "last_reload", None)
    if last is None:
        return None
    changes = list(getattr(last, "changes", ()))
    return {"at": last.at, "ok": last.ok, "errors": list(last.errors), "changes": changes}
