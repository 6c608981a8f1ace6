"""Replay from the admin UI and API: the request, read and checked, handed to the replay
operation (``router.ops.replay.replay``), with a dry run that only counts."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from router.web.dead_letters import FilterError, Filters, find, instant

if TYPE_CHECKING:
    from router.app import Tagless

#: Event ids one request may name.
MAX_EVENT_IDS: Final = 10_000
FIELDS: Final = frozenset(
    {"store", "destination", "event_ids", "reason", "since", "until", "dry_run"}
)


@attrs.frozen(kw_only=True)
class ReplayRequest:
    """Which dead letters to send again: a store's, narrowed by destination, event ids, reason
    and the time they died; ``dry_run`` (the default) only counts."""

    store: str
    destination: str | None = None
    event_ids: tuple[str, ...] | None = None
    reason: str | None = None
    since: float | None = None
    until: float | None = None
    dry_run: bool = True

    @classmethod
    def from_json(cls, body: Any, stores: list[str]) -> ReplayRequest:
        """The ``POST /api/replay`` body; a FilterError says what is wrong and what is valid."""
        if not isinstance(body, dict):
            raise FilterError("the body must be a JSON object with at least a store")
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise FilterError(f"unknown field {unknown[0]!r}; fields: {', '.join(sorted(FIELDS))}")
        texts = {}
        for name in ("store", "destination", "reason", "since", "until"):
            value = body.get(name)
            if value is not None and not isinstance(value, str | int | float):
                raise FilterError(f"{name} must be a string")
            texts[name] = None if value is None else str(value)
        event_ids = body.get("event_ids")
        if event_ids is not None and (
            not isinstance(event_ids, list) or not all(isinstance(e, str) for e in event_ids)
        ):
            raise FilterError("event_ids must be a list of event id strings")
        dry_run = body.get("dry_run", True)
        if not isinstance(dry_run, bool):
            raise FilterError("dry_run must be true or false")
        return cls.build(texts, event_ids, dry_run, stores)

    @classmethod
    def build(
        cls,
        texts: Mapping[str, str | None],
        event_ids: Sequence[str] | None,
        dry_run: bool,
        stores: list[str],
    ) -> ReplayRequest:
        """A checked request from its text fields (a form's or a JSON body's)."""
        store = texts.get("store")
        if not store:
            raise FilterError(f"store is required; stores: {', '.join(stores)}")
        if store not in stores:
            raise FilterError(f"store={store!r} is not configured; stores: {', '.join(stores)}")
        if event_ids is not None and not 0 < len(event_ids) <= MAX_EVENT_IDS:
            raise FilterError(f"event_ids must name 1 to {MAX_EVENT_IDS} events")
        return cls(
            store=store,
            destination=texts.get("destination") or None,
            event_ids=tuple(event_ids) if event_ids is not None else None,
            reason=texts.get("reason") or None,
            since=instant("since", texts.get("since")),
            until=instant("until", texts.get("until")),
            dry_run=dry_run,
        )

    def filters(self) -> Filters:
        return Filters(
            store=self.store,
            destination=self.destination,
            reason=self.reason,
            since=self.since,
            until=self.until,
        )


def _operation(name: str) -> Any:
    """ops-cli's ``router.ops.replay.<name>``, or None before that branch is merged
    (SEAM(ops-cli): imported by name; once merged, import it and drop the fallback below)."""
    try:
        return getattr(importlib.import_module("router.ops.replay"), name)
    except ImportError:
        return None


async def replay(tagless: Tagless, request: ReplayRequest) -> dict[str, Any]:
    """Replay (or, with ``dry_run``, count) the dead letters the request names.

    Answers at least ``{"dry_run", "matched", "replayed", "would_refuse_age"}``: how many
    dead letters match, how many were made due again (0 on a dry run), and how many a
    platform's age limit would refuse (None when not known). A ValueError says what is wrong.
    """
    operation = _operation("replay")
    if operation is None:
        return await _replay_dead_letters(tagless, request)
    answer: dict[str, Any] = await operation(
        tagless,
        request.store,
        destination=request.destination,
        event_ids=list(request.event_ids) if request.event_ids is not None else None,
        reason=request.reason,
        since=request.since,
        until=request.until,
        dry_run=request.dry_run,
    )
    return answer


async def replay_body(tagless: Tagless, body: Any) -> dict[str, Any]:
    """``POST /api/replay``: the JSON body checked and replayed; a ValueError says what is
    wrong. ops-cli's ``replay_request`` reads the body when present (it adds ``seqs`` and
    ``delivered``, a backfill); until then :class:`ReplayRequest` does."""
    operation = _operation("replay_request")
    if operation is None:
        stores = [store.store for store in tagless.config.stores]
        return await replay(tagless, ReplayRequest.from_json(body, stores))
    if not isinstance(body, dict):
        raise FilterError("the body must be a JSON object with at least a store")
    answer: dict[str, Any] = await operation(tagless, body)
    return answer


async def _replay_dead_letters(tagless: Tagless, request: ReplayRequest) -> dict[str, Any]:
    """SEAM(ops-cli): until ``router.ops.replay`` is merged, replay through the outbox's own
    dead-letter replay, matched the way the dead-letters page lists them; it cannot tell
    what an age limit would refuse."""
    rows = await find(tagless, request.filters(), limit=10 * MAX_EVENT_IDS)
    if request.event_ids is not None:
        wanted = set(request.event_ids)
        rows = [row for row in rows if row["event_id"] in wanted]
    by_destination: dict[str, list[int]] = {}
    for row in rows:
        by_destination.setdefault(row["destination"], []).append(row["seq"])
    replayed = 0
    if not request.dry_run:
        for destination, seqs in by_destination.items():
            replayed += await tagless.outbox.replay(request.store, destination, seqs=seqs)
    return {
        "dry_run": request.dry_run,
        "matched": len(rows),
        "replayed": replayed,
        "would_refuse_age": None,
    }
