"""Reliability tests 13 and 14: a long reader holding a snapshot while clients write (the WAL
grows, no write fails, a checkpoint truncates it once the reader is gone), and many concurrent
clients with deliveries and admin reads at the same time (no "database is locked" reaches a
client)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.chaos.rig import Rig, report, rig, scale
from tests.process.harness import ACKED, ADMIN_TOKEN, wait_until

WAIT_SECS = 90.0
WAL_TRUNCATED_BYTES = 4 << 20  # SQLite's auto-checkpoint size (1000 pages of 4 KiB)


def wal_bytes(r: Rig) -> int:
    wal = Path(f"{r.config.db_path}-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.slow
async def test_a_long_reader_grows_the_wal_without_failing_a_write_and_it_shrinks_after(
    tmp_path: Path,
) -> None:
    """A reader opens a transaction on the outbox (an admin export, say) and keeps it while
    clients post: every request is acknowledged though the WAL cannot be checkpointed, and once
    the reader ends the maintenance checkpoint brings the -wal file back down."""
    async with rig(tmp_path, ["hook"], outbox={"wal_checkpoint_secs": 1.0}) as r:
        await r.server.start()
        reader = sqlite3.connect(r.config.db_path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM events").fetchone()  # the snapshot is held
            held = r.history.fault("a reader holds a snapshot")
            async with r.load(clients=4, batch=(80, 120), seed=13) as load:
                assert await load.until_acked(scale(12_000, 150_000), WAIT_SECS)
            peak = wal_bytes(r)
        finally:
            reader.execute("COMMIT")
            reader.close()
        r.history.end(held)
        shrunk = await wait_until(lambda: wal_bytes(r) <= WAL_TRUNCATED_BYTES, WAIT_SECS)
        drained, code, verdict = await r.finish(WAIT_SECS)
        refused = [s for s in r.history.sent if s.outcome != ACKED]
        report(
            "WAL growth under a long reader (13)",
            f"the -wal file grew to {peak / 2**20:.1f} MB while the reader held its snapshot;"
            f" {len(refused)} requests not acknowledged",
            verdict.summary(),
        )
        assert not refused, f"writes failed under the long reader: {refused[:3]}"
        assert peak > WAL_TRUNCATED_BYTES, "the reader did not hold the WAL back (test too weak)"
        assert shrunk, f"the WAL stayed at {wal_bytes(r)} bytes after the reader ended"
        assert drained, verdict.summary()
        assert code == 0, r.server.tail()
        verdict.assert_ok()


@pytest.mark.slow
async def test_many_concurrent_clients_with_deliveries_and_admin_reads_are_all_answered(
    tmp_path: Path,
) -> None:
    """Fifty clients post at once while two destinations deliver and an operator polls the
    admin status and dead letters: every request is acknowledged (none meets a locked
    database), and everything reaches both platforms."""
    clients = scale(50, 200)
    async with rig(tmp_path, ["a", "b"], max_batch_size=100) as r:
        await r.server.start()
        stop = asyncio.Event()
        polls: list[int] = []

        async def operator() -> None:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            async with aiohttp.ClientSession(headers=headers) as session:
                while not stop.is_set():
                    for path in ("/api/status", "/api/stores/shop/dead-letters", "/metrics"):
                        async with session.get(r.config.admin_url + path) as answer:
                            await answer.read()
                            polls.append(answer.status)
                    await asyncio.sleep(0.05)

        admin = asyncio.create_task(operator())
        async with r.load(clients=clients, batch=(1, 20), seed=14) as load:
            assert await load.until_acked(scale(5_000, 100_000), WAIT_SECS)
        stop.set()
        await admin
        drained, code, verdict = await r.finish(WAIT_SECS)
        refused = [s for s in r.history.sent if s.outcome != ACKED]
        report(
            "many concurrent clients (14)",
            f"{clients} clients, {len(r.history.sent)} requests, {len(polls)} admin reads"
            f" (statuses {sorted(set(polls))}); {len(refused)} requests not acknowledged",
            verdict.summary(),
        )
        assert not refused, f"requests not acknowledged: {refused[:3]}"
        assert set(polls) == {200}, f"admin answers: {sorted(set(polls))}"
        assert drained, verdict.summary()
        assert code == 0, r.server.tail()
        verdict.assert_ok()
