"""One numbered list of outbox schema versions, shared by the SQLite and PostgreSQL backends."""

from __future__ import annotations

from typing import Final

import attrs


@attrs.frozen
class Step:
    """One schema version: what it changes, and the PostgreSQL statements that bring a
    database of the version before up to it (None: the version predates the PostgreSQL
    backend, whose baseline creates it whole). The SQLite steps live in
    ``router/outbox/schema.py``, which knows each older file layout."""

    version: int
    what: str
    postgres: tuple[str, ...] | None = None


#: Every schema version, oldest first. A new version appends a step here and both backends'
#: upgrades to it (SQLite: ``schema.py``; PostgreSQL: ``postgres`` below, run in one
#: transaction), so the two never diverge in meaning or number.
STEPS: Final = (
    Step(1, "events.seq never goes back (AUTOINCREMENT; PostgreSQL: a sequence never reset)"),
    Step(2, "identity stitching's identities table (dropped again by 3)"),
    Step(3, "events.anonymous_id and events.user_id, indexed, for stitching's look-up"),
    Step(4, "the attempts log: one row per batch tried at a destination"),
    Step(
        5,
        "SQLite: stitching's look-up index leaves the outbox file for a side file filled"
        " after the commit (PostgreSQL keeps its indexes: nothing changes)",
        postgres=(),
    ),
)

#: The version this code writes, on either backend.
SCHEMA_VERSION: Final = STEPS[-1].version

#: The first version the PostgreSQL backend knows: its baseline (``schema_pg.sql``) creates
#: this version whole; later versions upgrade with their step's statements.
POSTGRES_BASELINE: Final = 4


def pending(current: int) -> list[Step]:
    """The steps a schema at version ``current`` still needs, oldest first."""
    return [step for step in STEPS if step.version > current]


def newer_schema_message(where: str, version: int) -> str:
    """Why an outbox of a newer Tagless is refused, and the way out (one text for both)."""
    return (
        f"outbox {where}: schema version {version} was written by a newer Tagless (this one"
        f" knows up to {SCHEMA_VERSION}); run that version, or a backup made by this one"
    )
