"""Replay from the admin UI and API: the request, read and checked, handed to the replay
operation (``router.ops.replay.replay``), with a dry run that only counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from router.ops import replay as ops_replay
from router.web.dead_letters import FilterError, Filters, instant

if TYPE_CHECKING:
    from router.app import Tagless

#: Event ids one request may name.
MAX_EVENT_IDS: Final = 10_000


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


async def replay(tagless: Tagless, request: ReplayRequest) -> dict[str, Any]:
    """Replay (or, with ``dry_run``, count) the dead letters the request names, through the
    replay operation (:func:`router.ops.replay.replay`): its counts, ``would_refuse_age``
    included; a ValueError says what is wrong."""
    return await ops_replay.replay(
        tagless,
        request.store,
        destination=request.destination,
        event_ids=list(request.event_ids) if request.event_ids is not None else None,
        reason=request.reason,
        since=request.since,
        until=request.until,
        dry_run=request.dry_run,
    )


async def replay_body(tagless: Tagless, body: Any) -> dict[str, Any]:
    """``POST /api/replay``: the JSON body read and checked by
    :func:`router.ops.replay.replay_request` (dead letters, or with ``delivered`` a backfill);
    a ValueError says what is wrong."""
    if not isinstance(body, dict):
        raise FilterError("the body must be a JSON object with at least a store")
    return await ops_replay.replay_request(tagless, body)
