"""Retention: the settings the overview shows, and the maintenance round that enforces them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from router.config import Config, OutboxConfig
from router.outbox.postgres import PostgresOutbox
from router.outbox.sqlite import SqliteOutbox

log = structlog.get_logger("tagless.outbox")


def retention_settings(outbox: OutboxConfig) -> dict[str, Any]:
    """The retention keys of ``outbox:`` by name (hours)."""
    return {
        "pii_retention_hours": outbox.pii_retention_hours,
        "retention_hours": outbox.retention_hours,
        "dead_letter_retention_hours": outbox.dead_letter_retention_hours,
        "attempts_retention_hours": outbox.attempts_retention_hours,
        "attempts_max_rows": outbox.attempts_max_rows,
    }


async def enforce_retention(
    outbox: SqliteOutbox | PostgresOutbox,
    config: Config,
    now: float,
    *,
    rounds: int = 10,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One round for every store: dead letters past their retention are deleted (logged, per
    destination), settled events past ``retention_hours`` purged, and delivered events past
    ``pii_retention_hours`` stripped of their user data (``rounds`` batches at most); then the
    attempts log is cut to ``attempts_retention_hours`` and ``attempts_max_rows``. Returns
    the counts per store; ``progress`` is told of each store done."""
    settings = config.outbox
    done = []
    for store in config.stores:
        ids = [d.id for d in store.destinations if d.enabled]
        expired = await outbox.expire_dead_letters(
            store.store, now - settings.dead_letter_retention_hours * 3600
        )
        for destination, count in expired.items():
            log.warning(
                "dead_letters_expired",
                store=store.store,
                destination=destination,
                dead_letters=count,
                retention_hours=settings.dead_letter_retention_hours,
            )
        purged = await outbox.purge(store.store, ids, now - settings.retention_hours * 3600)
        if purged:
            log.info("outbox_purged", store=store.store, events=purged)
        stripped = await outbox.scrub_delivered(
            store.store, ids, now - settings.pii_retention_hours * 3600, rounds=rounds
        )
        if stripped:
            log.info("user_data_removed", store=store.store, events=stripped)
        done.append(
            {
                "store": store.store,
                "dead_letters_expired": sum(expired.values()),
                "purged": purged,
                "user_data_removed": stripped,
            }
        )
        if progress is not None:
            progress(1)
    # the attempts log is one table for every store, bounded by time and by rows
    await outbox.purge_attempts(
        now - settings.attempts_retention_hours * 3600, settings.attempts_max_rows
    )
    return done
