"""Erase a person from the outbox: every state, then the files checked byte by byte; an audit
record without the identity; the events platforms already got, reported."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from router.outbox.erasure import ErasureOperations, Identity, traces
from router.outbox.persons import ALL_SEQS

#: Tries at truncating the WAL while another connection (a running Tagless) reads it.
CHECKPOINT_TRIES: Final = 50
CHECKPOINT_PAUSE_SECS: Final = 0.1


def audit_path(outbox: Path) -> Path:
    """The erasure audit log beside the outbox file: one JSON line per erasure, no identity."""
    return outbox.with_name(outbox.name + ".erasures.jsonl")


async def erase(
    outbox: ErasureOperations,
    stores: Sequence[str],
    kind: str,
    value: str,
    *,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Erase the identity (``kind``: email, user_id, anonymous_id) from ``stores``.

    Its events are scrubbed of every identifying field and of the value wherever it stood,
    and leave every destination's pending, retry and dead-letter state; any other table's
    text holding it is scrubbed. Then the WAL is truncated and the database and WAL files are
    searched for the value's bytes; if stale copies remain in free space, the file is
    compacted (VACUUM) and searched again. The answer and the audit record name the events
    each destination had already been sent (only that platform can delete them there).
    ``progress`` is told of each store done.
    """
    identity = Identity.parse(kind, value)
    if getattr(outbox, "url", None) is not None:  # PostgreSQL: router/ops/erase_shared.py
        from router.ops.erase_shared import erase_shared

        return await erase_shared(outbox, stores, identity, now=now, progress=progress)
    answer = await erase_stores(outbox, stores, identity, progress)
    files = [outbox.path, outbox.path.with_name(outbox.path.name + "-wal")]
    index = outbox.persons  # stitching's look-up index: a side file holding ids
    answer["checkpointed"] = await _truncate_wal(outbox) and await index.checkpoint()
    left = traces([*files, *index.files()], identity)
    answer["compacted"] = bool(left)
    if left:
        await outbox.writer.outside_transaction(_vacuum)
        # the whole index checked against the events (an earlier erasure's pass may have
        # failed after its events were scrubbed), then compacted
        await index.prune(0, ALL_SEQS)
        await index.vacuum()
        answer["checkpointed"] = await _truncate_wal(outbox) and await index.checkpoint()
        left = traces([*files, *index.files()], identity)
    answer["traces"] = left
    audit(outbox.path, answer, time.time() if now is None else now)
    return answer


async def erase_stores(
    outbox: Any,
    stores: Sequence[str],
    identity: Identity,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Erase ``identity`` from each store's state; the answer's per-store counts
    (``progress`` is told of each store done)."""
    answer: dict[str, Any] = {"identity": identity.kind, "stores": []}
    for store in stores:
        done = await outbox.erase(store, identity)
        answer["stores"].append(
            {
                "store": store,
                "events": done.events,
                "pending_dropped": done.pending,
                "deliveries_removed": done.deliveries,
                "already_sent": done.already_sent,
                "rows_scrubbed": done.rows_scrubbed,
            }
        )
    return answer


def _vacuum(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA secure_delete = ON")
    db.execute("VACUUM")


async def _truncate_wal(outbox: ErasureOperations) -> bool:
    """Checkpoint the WAL into the database and truncate it; False if readers kept it busy."""

    def truncate(db: sqlite3.Connection) -> bool:
        row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return row is not None and int(row[0]) == 0

    for _ in range(CHECKPOINT_TRIES):
        if await outbox.writer.outside_transaction(truncate):
            return True
        await asyncio.sleep(CHECKPOINT_PAUSE_SECS)
    return False


def audit(outbox: Path, answer: dict[str, Any], now: float) -> None:
    """Append the audit record: counts and destinations only, never the identity or ids."""
    record = {
        "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "identity_kind": answer["identity"],
        "stores": [
            {
                "store": s["store"],
                "events": s["events"],
                "pending_dropped": s["pending_dropped"],
                "deliveries_removed": s["deliveries_removed"],
                "already_sent": {dest: len(ids) for dest, ids in s["already_sent"].items()},
                "rows_scrubbed": s["rows_scrubbed"],
            }
            for s in answer["stores"]
        ],
        "compacted": answer["compacted"],
        "traces_left": len(answer["traces"]),
    }
    with audit_path(outbox).open("ab") as handle:
        handle.write(orjson.dumps(record) + b"\n")
