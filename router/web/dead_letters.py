"""Dead letters for the admin UI and API: filters from a query, the matching rows as dicts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from router.privacy import scrub

if TYPE_CHECKING:
    from router.app import Tagless

#: Dead letters read per (store, destination) at most, newest first.
MAX_ROWS: Final = 10_000
#: What one page or API answer lists.
DEFAULT_LIMIT: Final = 200


class FilterError(ValueError):
    """A filter value that cannot be read; the message names it and what would be valid."""


def instant(name: str, text: str | None) -> float | None:
    """``since``/``until``: ISO 8601 (a time without offset is UTC) or Unix seconds."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(
            f"{name}={text!r} is not a time: use ISO 8601 (2026-11-30T09:00:00Z) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@attrs.frozen(kw_only=True)
class Filters:
    """Which dead letters: of a store, a destination, a reason (its start), dead in a window."""

    store: str | None = None
    destination: str | None = None
    reason: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str], stores: list[str]) -> Filters:
        """Filters from a query string or form; an unknown store or a bad time raises."""
        store = query.get("store") or None
        if store is not None and store not in stores:
            raise FilterError(f"store={store!r} is not configured; stores: {', '.join(stores)}")
        since = instant("since", query.get("since"))
        until = instant("until", query.get("until"))
        if since is not None and until is not None and until <= since:
            raise FilterError("until must be later than since")
        return cls(
            store=store,
            destination=query.get("destination") or None,
            reason=query.get("reason") or None,
            since=since,
            until=until,
        )

    def matches(self, reason: str, died_at: float) -> bool:
        """Whether a dead letter of the right store and destination passes the other filters."""
        if self.reason is not None and not reason.startswith(self.reason):
            return False
        if self.since is not None and died_at < self.since:
            return False
        return self.until is None or died_at < self.until

    def as_query(self) -> dict[str, str]:
        """The filters as they would be typed back in (times as ISO 8601)."""
        found = {
            "store": self.store,
            "destination": self.destination,
            "reason": self.reason,
            "since": iso(self.since),
            "until": iso(self.until),
        }
        return {key: value for key, value in found.items() if value}


def iso(unix: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC to the second, or None."""
    if unix is None:
        return None
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def find(
    tagless: Tagless, filters: Filters, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """The newest dead letters matching ``filters``, at most ``limit``, as JSON-ready dicts.

    The platform's answer in ``detail`` was scrubbed when stored; it is scrubbed again here,
    as a page must never show an email, a phone or an address, whatever older code stored.
    """
    found: list[dict[str, Any]] = []
    for store in tagless.config.stores:
        if filters.store not in (None, store.store):
            continue
        rows = await tagless.outbox.dead_letters(store.store, filters.destination, MAX_ROWS)
        found.extend(
            {
                "store": row.store,
                "destination": row.destination,
                "event_id": row.event_id,
                "seq": row.seq,
                "attempts": row.attempts,
                "reason": row.reason,
                "last_status": row.last_status,
                "detail": scrub(row.detail),
                "died_at": row.updated_at,
            }
            for row in rows
            if filters.matches(row.reason, row.updated_at)
        )
    found.sort(key=lambda row: row["died_at"], reverse=True)
    return found[:limit]
