"""The PostgreSQL outbox's schema: create it, upgrade it along the shared numbered list, refuse
a database it cannot trust."""

from __future__ import annotations

from importlib import resources
from typing import Final

import structlog

from router.outbox.base import OutboxStateError
from router.outbox.migrations import (
    POSTGRES_BASELINE,
    SCHEMA_VERSION,
    Step,
    newer_schema_message,
    pending,
)
from router.outbox.pg_writer import Db

log = structlog.get_logger("tagless.outbox")

#: Held while a node migrates, so nodes starting together upgrade once, one after the other.
MIGRATE_LOCK: Final = 0x74676D67  # "tgmg"


async def current_version(db: Db) -> int:
    """The database's schema version; 0 for a database Tagless has not set up."""
    if await db.fetchval("SELECT to_regclass('tagless_schema')") is None:
        return 0
    version = await db.fetchval("SELECT version FROM tagless_schema")
    return int(version or 0)


def steps_for(version: int) -> list[Step]:
    """What a database at ``version`` still needs (a new one: the baseline, then the rest)."""
    return [step for step in pending(version) if version or step.version >= POSTGRES_BASELINE]


async def prepare(db: Db, where: str) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` in one transaction and check it; return
    the version it had. Raises :class:`OutboxStateError`, having changed nothing, for a
    database of a newer Tagless or one whose cursors are ahead of its event log."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
        version = await current_version(db)
        if version > SCHEMA_VERSION:
            raise OutboxStateError(newer_schema_message(where, version))
        if version == 0:
            text = resources.files("router.outbox").joinpath("schema_pg.sql").read_text()
            await db.execute(text)
        for step in pending(max(version, POSTGRES_BASELINE)):
            for statement in step.postgres or ():
                await db.execute(statement)
        await db.execute(
            "INSERT INTO tagless_schema (version) VALUES ($1)"
            " ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            SCHEMA_VERSION,
        )
        if 0 < version < SCHEMA_VERSION:  # a new database is created silently, as a new file
            log.warning("outbox_schema_upgraded", from_version=version, to_version=SCHEMA_VERSION)
        await _refuse_cursors_ahead(db, where)
    return version


async def high_water(db: Db) -> int:
    """The highest seq the event log has handed out (its sequence's last value)."""
    value = await db.fetchval(
        "SELECT greatest(coalesce(pg_sequence_last_value('events_seq_seq'), 0),"
        " coalesce((SELECT max(seq) FROM events), 0))"
    )
    return int(value or 0)


async def _refuse_cursors_ahead(db: Db, where: str) -> None:
    high = await high_water(db)
    ahead = await db.fetch(
        "SELECT store, destination, seq FROM cursors WHERE seq > $1"
        " ORDER BY seq DESC, store, destination",
        high,
    )
    if not ahead:
        return
    store, destination, seq = ahead[0]
    more = f" (and {len(ahead) - 1} more)" if len(ahead) > 1 else ""
    raise OutboxStateError(
        f"outbox {where}: the cursor of store {store!r} destination {destination!r} is at seq"
        f" {seq}{more}, ahead of the highest seq the event log has handed out ({high}): new"
        " events would be stored behind it and never delivered. The database was restored"
        " in part or its sequence reset. Restore the whole database from one dump; or, with"
        " every node stopped, take what is stored up to the cursors as settled and raise the"
        f" sequence: SELECT setval('events_seq_seq', {seq});"
    )
