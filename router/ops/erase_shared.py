"""Erase a person from a PostgreSQL outbox: every state on every node's shared database, the
changed tables rewritten, then searched; an audit record without the identity."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from router.ops.erase import audit, erase_stores
from router.outbox.erasure import Identity

#: The audit log of erasures from a PostgreSQL outbox, in the working directory of the command
#: (a SQLite outbox keeps it beside its file).
AUDIT_BASE: Final = Path("tagless-postgresql")


async def erase_shared(
    outbox: Any,
    stores: Sequence[str],
    identity: Identity,
    *,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """As :func:`router.ops.erase.erase`: the events scrubbed and their delivery rows dropped
    in one transaction, the other tables' text scrubbed, the tables rewritten (VACUUM FULL, so
    no dead row version keeps the value) and searched again."""
    answer = await erase_stores(outbox, stores, identity, progress)
    answer["checkpointed"] = False
    answer["compacted"] = True
    answer["traces"] = await outbox.traces(identity)
    answer["checked"] = (
        "tables rewritten and searched: no trace left (PostgreSQL's WAL archive, replicas and"
        " backups keep older copies until they rotate)"
    )
    audit(AUDIT_BASE, answer, time.time() if now is None else now)
    return answer
