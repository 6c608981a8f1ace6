"""Readiness: one answer on the ingest and the admin listener, false while ingest cannot commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from router.app import Tagless


async def not_ready_reason(tagless: Tagless) -> str | None:
    """Why ingest cannot take events now (a short code), or None when it can.

    ``starting``, ``shutting_down``, or the outbox's own reason: ``outbox_closed``,
    ``commit_failed``, ``low_disk``, ``backlog_full`` (every store at ``max_pending_events``).
    """
    return lifecycle_reason(tagless) or await tagless.outbox.unready(
        store.store for store in tagless.config.stores
    )


def lifecycle_reason(tagless: Tagless) -> str | None:
    """``starting`` or ``shutting_down`` while ingest (this process's, or its ingest
    processes') does not take events, else None."""
    if tagless.pool is not None:
        if tagless.pool.stopping:
            return "shutting_down"
        return None if tagless.pool.serving else "starting"
    if tagless.ingest is None:
        return "starting"
    return None if tagless.ingest.accepting else "shutting_down"


async def readyz(tagless: Tagless) -> web.Response:
    """``200 {"ready": true, "reason": null}`` or ``503 {"ready": false, "reason": "<code>"}``."""
    reason = await not_ready_reason(tagless)
    return web.json_response(
        {"ready": reason is None, "reason": reason}, status=200 if reason is None else 503
    )
