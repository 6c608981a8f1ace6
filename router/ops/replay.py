"""Replay dead letters and backfill delivered events to a destination, with a dry run first."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import orjson

from router import codec
from router.clock import Clock
from router.destination import Destination
from router.outbox.replays import Delivered, Replayable
from router.stores import StoreRuntime

#: Events read per query while a backfill walks the log.
PAGE = 500

#: Told how many more events a replay or backfill has handled (a progress bar).
Progress = Callable[[int], None]


class ReplaySource(Protocol):
    """What a replay needs: a running :class:`~router.app.Tagless`, or the CLI's stand-in."""

    @property
    def outbox(self) -> Replayable: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def stores(self) -> Mapping[str, StoreRuntime]: ...

    @property
    def destinations(self) -> Mapping[tuple[str, str], Destination[Any]]: ...


def moment(value: float | str | None, what: str) -> float | None:
    """Unix seconds from a number or an ISO 8601 time (without an offset: UTC)."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{what}: {value!r} is not a time; expected ISO 8601 such as"
            " 2026-11-30T14:00:00Z, or Unix seconds"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@attrs.define
class _Lane:
    """One destination's figures in a replay's answer."""

    id: str
    max_event_age_secs: float | None
    matched: int = 0
    would_send: int = 0
    would_refuse_age: int = 0
    not_routed: int = 0
    replayed: int = 0

    def count(self, occurred_at: str | None, received_at: float, now: float) -> None:
        """One more event that would be sent; too old for the platform, or not."""
        self.would_send += 1
        limit = self.max_event_age_secs
        happened = moment(occurred_at, "occurred_at") if occurred_at else received_at
        if limit is not None and happened is not None and now - happened > limit:
            self.would_refuse_age += 1


def _lane(source: ReplaySource, store: str, destination: str) -> _Lane:
    instance = source.destinations[(store, destination)]
    return _Lane(destination, instance.max_event_age_secs)


def _check(source: ReplaySource, store: str, destination: str | None) -> None:
    if store not in source.stores:
        raise ValueError(f"store {store!r} is not configured; stores: {sorted(source.stores)}")
    ids = sorted(d for s, d in source.destinations if s == store)
    if destination is not None and destination not in ids:
        raise ValueError(
            f"store {store!r} has no enabled destination {destination!r}; destinations: {ids}"
        )


async def replay(
    source: ReplaySource,
    store: str,
    *,
    destination: str | None = None,
    seqs: Sequence[int] | None = None,
    event_ids: Sequence[str] | None = None,
    reason: str | None = None,
    since: float | str | None = None,
    until: float | str | None = None,
    delivered: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Make dead letters due again (by destination, seq, event id, reason start, time range);
    with ``delivered``, backfill instead: send ``destination`` again the events of the range
    it has already settled, and those routing now sends it that it never got (a destination
    added later). ``dry_run`` counts and changes nothing.

    The answer counts what matched, what would be sent, how many of those the platform's age
    limit would refuse, and what was made due (0 in a dry run), in total and per destination.
    """
    start, end = moment(since, "since"), moment(until, "until")
    _check(source, store, destination)
    if delivered:
        if destination is None:
            raise ValueError("a backfill (delivered events) needs one destination")
        lanes, ahead = await _backfill(
            source, store, destination, start, end, event_ids, dry_run, progress
        )
    else:
        lanes, ahead = (
            await _dead(
                source, store, destination, seqs, event_ids, reason, start, end, dry_run, progress
            ),
            0,
        )
    figures = [attrs.asdict(lane) for lane in lanes]
    totals = {
        key: sum(lane[key] for lane in figures)
        for key in ("matched", "would_send", "would_refuse_age", "not_routed", "replayed")
    }
    return {
        "store": store,
        "kind": "backfill" if delivered else "dead_letters",
        "dry_run": dry_run,
        **totals,
        "ahead_of_cursor": ahead,
        "destinations": figures,
    }


async def _dead(
    source: ReplaySource,
    store: str,
    destination: str | None,
    seqs: Sequence[int] | None,
    event_ids: Sequence[str] | None,
    reason: str | None,
    since: float | None,
    until: float | None,
    dry_run: bool,
    progress: Progress | None,
) -> list[_Lane]:
    box = source.outbox
    found = await box.dead_matches(
        store, destination, seqs=seqs, event_ids=event_ids, reason=reason, since=since, until=until
    )
    now = source.clock.now()
    lanes: dict[str, _Lane] = {}
    for match in found:
        lane = lanes.get(match.destination)
        if lane is None:
            known = (store, match.destination) in source.destinations
            lane = lanes[match.destination] = (
                _lane(source, store, match.destination) if known else _Lane(match.destination, None)
            )
        lane.matched += 1
        lane.count(match.occurred_at, match.received_at, now)
    if not dry_run:
        for lane in lanes.values():
            mine = [m for m in found if m.destination == lane.id]
            lane.replayed = await box.revive(store, mine)
            if progress is not None:
                progress(len(mine))
    return list(lanes.values())


async def _backfill(
    source: ReplaySource,
    store: str,
    destination: str,
    since: float | None,
    until: float | None,
    event_ids: Sequence[str] | None,
    dry_run: bool,
    progress: Progress | None,
) -> tuple[list[_Lane], int]:
    box, runtime = source.outbox, source.stores[store]
    lane = _lane(source, store, destination)
    now, after = source.clock.now(), 0
    while True:
        page = await box.delivered(
            store,
            destination,
            since=since,
            until=until,
            event_ids=event_ids,
            after=after,
            limit=PAGE,
        )
        if not page:
            break
        after = page[-1].seq
        chosen: list[tuple[int, str]] = []
        for row in page:
            lane.matched += 1
            route = _route(runtime, destination, row)
            if route is None:
                lane.not_routed += 1
                continue
            chosen.append((row.seq, route))
            occurred = orjson.loads(row.body).get("occurred_at")
            lane.count(occurred, row.received_at, now)
        if not dry_run:
            lane.replayed += await box.backfill(store, destination, chosen)
        if progress is not None:
            progress(len(page))
    ahead = await box.ahead_of_cursor(store, destination, since, until)
    return [lane], ahead


def _route(runtime: StoreRuntime, destination: str, row: Delivered) -> str | None:
    """The event's route to ``destination``: as stored, or decided by routing now for an
    event stored before the destination took it (filters and consent as configured now)."""
    for token in (destination, destination + "!"):
        if f" {token} " in row.routes:
            return token
    event = codec.decode(row.body)
    decided = runtime.route(event.name, event.consent, event.source_name).routes
    return next((token for token in decided if token.rstrip("!") == destination), None)


#: ``POST /api/replay``'s body keys and the JSON types each takes.
_REQUEST: dict[str, tuple[type, ...]] = {
    "store": (str,),
    "destination": (str,),
    "event_ids": (list,),
    "seqs": (list,),
    "reason": (str,),
    "since": (str, int, float),
    "until": (str, int, float),
    "delivered": (bool,),
    "dry_run": (bool,),
}


async def replay_request(source: ReplaySource, body: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`replay` from a JSON body (``POST /api/replay``): ``store`` required, the other
    keys of :data:`_REQUEST` optional, ``dry_run`` true unless it says false. A wrong key or
    type raises ValueError saying which and what is valid."""
    unknown = sorted(set(body) - set(_REQUEST))
    if unknown:
        raise ValueError(f"unknown keys {unknown}; valid keys: {sorted(_REQUEST)}")
    for key, value in body.items():
        kinds = _REQUEST[key]
        if value is not None and (
            not isinstance(value, kinds) or isinstance(value, bool) != (bool in kinds)
        ):
            names = " or ".join(dict.fromkeys(_JSON_NAMES[kind] for kind in kinds))
            raise ValueError(f"{key}: expected {names}, got {type(value).__name__}")
    if not isinstance(body.get("store"), str):
        raise ValueError("store: required, the store's name")
    for key, kind in (("event_ids", str), ("seqs", int)):
        items = body.get(key)
        if items is not None and not all(
            isinstance(i, kind) and not isinstance(i, bool) for i in items
        ):
            raise ValueError(f"{key}: expected a list of {_JSON_NAMES[kind][2:]}s")
    return await replay(
        source,
        body["store"],
        destination=body.get("destination"),
        seqs=body.get("seqs"),
        event_ids=body.get("event_ids"),
        reason=body.get("reason"),
        since=body.get("since"),
        until=body.get("until"),
        delivered=bool(body.get("delivered", False)),
        dry_run=body.get("dry_run") is not False,
    )


_JSON_NAMES = {
    str: "a string",
    int: "a number",
    float: "a number",
    list: "a list",
    bool: "true or false",
}
