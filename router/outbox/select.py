"""Which outbox backend a config selects: ``outbox.url`` PostgreSQL, else the SQLite file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.clock import Clock
from router.config.model import OutboxConfig
from router.startup import StartupError

if TYPE_CHECKING:
    from router.outbox.postgres import PostgresOutbox
    from router.outbox.sqlite import SqliteOutbox


def make_outbox(
    config: OutboxConfig, clock: Clock | None = None, *, shared: bool = False
) -> SqliteOutbox | PostgresOutbox:
    """The outbox ``config`` names, not opened yet: PostgreSQL for ``url``, SQLite for
    ``path`` (the embedded default); ``shared``: other processes write the SQLite file too
    (``server.ingest_processes``), each commit takes its turn (router/outbox/writer.py)."""
    if config.url is not None:
        from router.outbox.postgres import PostgresOutbox

        return PostgresOutbox(
            config.url.reveal(),
            clock=clock,
            max_pending_events=config.max_pending_events,
            lease_secs=config.lease_secs,
        )
    from router.outbox.sqlite import SqliteOutbox

    return SqliteOutbox(
        config.path,
        clock=clock,
        synchronous=config.synchronous,
        max_pending_events=config.max_pending_events,
        min_free_disk_mb=config.min_free_disk_mb,
        lease_secs=config.lease_secs,
        shared=shared,
    )


def describe(config: OutboxConfig) -> str:
    """Where the outbox is, for messages: the file, or the database URL without password."""
    if config.url is None or config.url.missing is not None:
        return str(config.path)
    from router.outbox.postgres import redacted

    return redacted(config.url.reveal())


def open_failure(config: OutboxConfig, error: Exception) -> StartupError:
    """A PostgreSQL outbox that could not be reached or set up."""
    return StartupError(
        f"cannot open the outbox {describe(config)} (outbox.url): {error}; check that"
        " PostgreSQL answers there, that the database exists and that the user may create"
        " tables in it"
    )
