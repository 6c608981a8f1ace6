"""``tagless migrate``: where an outbox's schema stands on the shared numbered list, and
bringing it up to date (what every start does by itself)."""

from __future__ import annotations

import sqlite3

import asyncpg
import attrs

from router.config.model import OutboxConfig
from router.outbox.migrations import SCHEMA_VERSION, Step, pending
from router.outbox.select import describe, make_outbox


@attrs.frozen
class Migration:
    """An outbox's schema version and the steps that take it to :data:`SCHEMA_VERSION`."""

    backend: str
    where: str
    version: int
    steps: tuple[Step, ...]

    @property
    def newer(self) -> bool:
        """Written by a newer Tagless: this one refuses to run on it."""
        return self.version > SCHEMA_VERSION

    def as_json(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "outbox": self.where,
            "version": self.version,
            "target": SCHEMA_VERSION,
            "steps": [{"version": s.version, "what": s.what} for s in self.steps],
        }


async def look(config: OutboxConfig) -> Migration:
    """Where ``config``'s outbox stands, changing nothing (a missing one is version 0)."""
    where = describe(config)
    if config.url is not None:
        from router.outbox.pg_schema import current_version, steps_for

        db = await asyncpg.connect(config.url.reveal())
        try:
            version = await current_version(db)
        finally:
            await db.close()
        return Migration("postgresql", where, version, tuple(steps_for(version)))
    version = 0
    if config.path.exists():
        with sqlite3.connect(f"file:{config.path}?mode=ro", uri=True) as file:
            version = int(file.execute("PRAGMA user_version").fetchone()[0])
    return Migration("sqlite", where, version, tuple(pending(version)))


async def migrate(config: OutboxConfig) -> Migration:
    """Bring the outbox to :data:`SCHEMA_VERSION` as a start would (one transaction; a newer
    schema or cursors ahead of the log raise ``OutboxStateError``); return where it stood."""
    before = await look(config)
    if before.newer:
        return before
    box = make_outbox(config)
    await box.open()
    await box.close()
    return before
