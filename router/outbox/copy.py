"""``tagless outbox copy``: an outbox's events and delivery state moved to another outbox (SQLite
to PostgreSQL or back) in one transaction of the target, so nothing is lost or sent twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import attrs

from router.config.model import OutboxConfig
from router.outbox.base import OutboxStateError
from router.outbox.copy_sides import PostgresSide, Side, SqliteSide
from router.outbox.retention import SCRUB_POSITION
from router.outbox.select import describe, make_outbox

#: The reason of a copied event that was still waiting for its destination: it is due at once
#: in the target, as a retry with a fresh attempt budget.
COPIED_REASON: Final = "copied"
#: Events read and written at a time.
CHUNK: Final = 2_000


@attrs.frozen
class Copied:
    """What a copy moved: events, and per state the (event, destination) pairs."""

    events: int
    already_there: int
    states: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {"events": self.events, "already_there": self.already_there, **self.states}


async def copy_outbox(source: OutboxConfig, target: OutboxConfig, now: float) -> Copied:
    """Copy every event of ``source`` with its per-destination state into ``target``.

    Settled events come along (they keep the de-duplication of a sender's retries), waiting
    ones are due at once, retries keep their attempts and due time, dead letters stay dead
    letters. The target must have nothing undelivered of its own; the target's cursors end
    at its newest event, so only the copied state decides what goes out. No Tagless may run
    on either outbox meanwhile; the source is left as it was (start only the target after).
    """
    if describe(source) == describe(target):
        raise OutboxStateError(f"outbox copy: {describe(source)} is both source and target")
    for config in (source, target):  # bring both schemas to this version (or refuse)
        box = make_outbox(config)
        await box.open()
        await box.close()
    src, dst = await _side(source), await _side(target)
    try:
        await _refuse_undelivered(dst, describe(target))
        cursors = {k: v for k, v in (await src.cursors()).items() if k[1] != SCRUB_POSITION}
        held: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        for row in await src.deliveries():
            held.setdefault((row[0], row[2]), []).append(row)
        await dst.begin()
        copied, present, states = 0, 0, Counter[str]()
        lanes: set[tuple[str, str]] = set(cursors)
        after = 0
        while chunk := await src.events(after, CHUNK):
            after = chunk[-1][0]
            stored = await dst.insert(chunk)
            present += len(chunk) - len(stored)
            rows = _rows(chunk, stored, held, cursors, states, lanes, now)
            copied += len(stored)
            await dst.put(rows, {})
        top = await dst.high_water()
        # destinations only: a position of another kind (the user-data scrub's, named so no
        # destination can take it) starts over and walks the copied events again
        moved = {lane for lane in lanes | set(await dst.cursors()) if lane[1] != SCRUB_POSITION}
        await dst.put([], dict.fromkeys(moved, top))
        await dst.commit()
    finally:
        await src.close()
        await dst.close()
    return Copied(copied, present, dict(states))


def _rows(
    chunk: Sequence[tuple[Any, ...]],
    stored: dict[tuple[str, str], int],
    held: dict[tuple[str, int], list[tuple[Any, ...]]],
    cursors: dict[tuple[str, str], int],
    states: Counter[str],
    lanes: set[tuple[str, str]],
    now: float,
) -> list[tuple[Any, ...]]:
    """The target's delivery rows of a chunk's newly stored events."""
    rows: list[tuple[Any, ...]] = []
    for seq, store, event_id, _, routes, *_rest in chunk:
        new_seq = stored.get((store, event_id))
        if new_seq is None:
            continue
        own = {row[1]: row for row in held.get((store, seq), ())}
        for dest, row in own.items():
            rows.append((row[0], row[1], new_seq, *row[3:]))
            states[row[3]] += 1
            lanes.add((store, dest))
        for route in routes.split():
            dest = route.rstrip("!")
            lanes.add((store, dest))
            if dest in own:
                continue
            if seq > cursors.get((store, dest), 0):
                rows.append(
                    (store, dest, new_seq, "retry", 0, now, now, COPIED_REASON, None, "", now)
                )
                states["pending"] += 1
            else:
                states["delivered"] += 1
    return rows


async def _side(config: OutboxConfig) -> Side:
    if config.url is not None:
        return await PostgresSide.connect(config.url.reveal())
    return SqliteSide(config.path)


async def _refuse_undelivered(target: Side, where: str) -> None:
    """The target may hold settled events (an old outbox), never undelivered ones: its cursors
    move to its newest event, past them."""
    cursors = await target.cursors()
    waiting = Counter[tuple[str, str]]()
    after = min(cursors.values(), default=0)
    while chunk := await target.events(after, CHUNK):
        after = chunk[-1][0]
        for seq, store, _, _, routes, *_rest in chunk:
            for route in routes.split():
                if seq > cursors.get((store, route.rstrip("!")), 0):
                    waiting[(store, route.rstrip("!"))] += 1
    for row in await target.deliveries():
        if row[3] == "retry":
            waiting[(row[0], row[1])] += 1
    if waiting:
        (store, dest), count = waiting.most_common(1)[0]
        raise OutboxStateError(
            f"outbox copy: the target {where} has undelivered events ({count} of store"
            f" {store!r} for {dest!r}); deliver them first, or copy into a new outbox"
        )
