"""Reliability tests 8 and 9: a long outage under sustained load keeps memory flat while the
outbox grows, and past the backlog quota ingest answers 503 with ``Retry-After``, never 200; a
full disk answers 503 too, corrupts nothing, and ingest comes back without a restart once
space returns."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.chaos.rig import Rig, report, rig, scale
from tests.process.harness import AUTHORIZATION, FAILED, integrity_check, message, wait_until

QUOTA = scale(6_000, 150_000)
WAIT_SECS = 120.0


def rss_mb(pid: int) -> float:
    """The resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def probe(r: Rig) -> tuple[int, str | None]:
    """One more batch: its status and Retry-After header."""
    payload = {"batch": [message(f"{r.run}-probe-{i}") for i in range(5)]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{r.config.ingest_url}/v1/batch",
            json=payload,
            headers={"Authorization": AUTHORIZATION},
        ) as answer,
    ):
        await answer.read()
        return answer.status, answer.headers.get("Retry-After")


@pytest.mark.slow
async def test_a_long_outage_under_load_keeps_memory_flat_and_refuses_past_the_quota(
    tmp_path: Path,
) -> None:
    """Every platform answers 503 while clients post: the outbox grows on disk to the quota
    (max_pending_events) with the process's memory flat, then ingest answers 503 with
    Retry-After and stores nothing; once the platforms are back the backlog drains whole."""
    async with rig(
        tmp_path, ["a", "b"], outbox={"max_pending_events": QUOTA}, max_batch_size=100
    ) as r:
        await r.server.start()
        assert r.server.proc is not None
        for platform in r.platforms.values():
            platform.behaviour.status = 503
        outage = r.history.fault("every platform answers 503")
        rss: list[tuple[int, float]] = []
        async with r.load(clients=4, batch=(50, 100), seed=8) as load:
            assert await load.until_acked(QUOTA // 5, WAIT_SECS)
            rss.append((len(r.history.acked), rss_mb(r.server.proc.pid)))

            def refusing() -> bool:
                return any(s.outcome == FAILED and s.status == 503 for s in r.history.sent[-20:])

            assert await wait_until(refusing, WAIT_SECS), "ingest never refused past the quota"
            rss.append((len(r.history.acked), rss_mb(r.server.proc.pid)))
        status, retry_after = await probe(r)
        for platform in r.platforms.values():
            platform.behaviour.status = None
        r.history.end(outage)
        drained, code, verdict = await r.finish(WAIT_SECS)
        (early_events, early_mb), (full_events, full_mb) = rss
        report(
            "a long outage under load, up to the quota (8)",
            f"quota {QUOTA} events; RSS {early_mb:.1f} MB at {early_events} queued events,"
            f" {full_mb:.1f} MB at {full_events} ({full_mb / early_mb - 1:+.1%}); at the quota:"
            f" {status} with Retry-After {retry_after}",
            verdict.summary(),
        )
        assert (status, retry_after is not None) == (503, True), (status, retry_after)
        assert full_mb <= early_mb * 1.25 + 10, f"memory grew with the backlog: {rss}"
        assert drained, "the backlog did not drain\n" + verdict.summary()
        assert code == 0, r.server.tail()
        verdict.assert_ok()


@contextlib.contextmanager
def small_filesystem(where: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` mounted at ``where`` (needs root; skips the test otherwise)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
async def test_a_full_disk_answers_503_corrupts_nothing_and_recovers_without_restart(
    tmp_path: Path,
) -> None:
    """The outbox lives on an 8 MB filesystem filled up by another file: while the disk is
    full ingest answers 503 (never 200), the outbox stays intact, and once the file is removed
    the same process acknowledges again and delivers everything it acknowledged."""
    with small_filesystem(tmp_path / "small", 8) as disk:
        async with rig(
            tmp_path / "config",
            ["hook"],
            outbox_path=disk / "tagless.db",
            outbox={"min_free_disk_mb": 0},  # let SQLite itself hit the full disk
        ) as r:
            await r.server.start()
            filler = disk / "filler"
            with filler.open("wb") as out, contextlib.suppress(OSError):  # fill it up
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            os.truncate(filler, filler.stat().st_size - (1 << 20))  # all but ~1 MB
            full = r.history.fault("disk full")
            async with r.load(clients=3, batch=(50, 100), seed=9) as load:

                def refused() -> bool:
                    return any(s.status == 503 for s in r.history.sent)

                assert await wait_until(refused, WAIT_SECS), "ingest never answered 503"
                refusals = sum(1 for s in r.history.sent if s.status == 503)
                await asyncio.sleep(1.0)
                assert integrity_check(r.config.db_path) == "ok"
                filler.unlink()
                r.history.end(full)
                acked_before = len(r.history.acked)
                assert await load.until_acked(acked_before + 500, WAIT_SECS), (
                    "ingest did not come back once space returned\n" + r.server.tail()
                )
            pid_unchanged = r.server.running
            drained, code, verdict = await r.finish(WAIT_SECS)
            statuses = sorted({s.status for s in r.history.sent if s.status != 200}, key=str)
            report(
                "disk full (9)",
                f"8 MB filesystem filled but ~1 MB; {refusals} requests answered 503 before space"
                f" returned; other non-200 answers seen: {statuses}; {acked_before} events acked"
                " before, more after, one process throughout",
                verdict.summary(),
            )
            assert pid_unchanged and r.server.logs and len(r.server.logs) == 1
            assert set(statuses) <= {503}, f"answers other than 200 and 503: {statuses}"
            assert drained, "not everything acknowledged was delivered\n" + verdict.summary()
            assert code == 0, r.server.tail()
            verdict.assert_ok()
