"""Micro-benchmark: GA4 send() against bench/platforms.py; events/s and Tagless CPU ms/1,000.

Maps ``--events`` purchases of distinct clients (one request each, as in production), then sends
them in batches of 25 with ``--in-flight`` batches at a time (the dispatcher's concurrency) and
reports, per repetition and as the median, the events per second and this process's CPU time
per 1,000 events (``time.process_time``: the fake platform runs in its own process, so only
Tagless's side is counted). It starts the fake itself unless ``--port`` names a running one,
and then also reports the fake's CPU per 1,000 events (from /proc), which bounds the rate.

    .venv/bin/python bench/ga4_micro.py --events 20000 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from destinations.ga4 import Ga4Config, Ga4Destination
from router.http import HttpClient
from router.secret import Secret
from router.testing.events import make_event

BENCH = Path(__file__).parent
BATCH = 25


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(port: int, deadline_secs: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_secs
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the fake GA4 did not start on port {port}")


def fake_cpu(pid: int | None) -> float:
    """CPU seconds the fake platform has used so far (0 when it is not ours or not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def payloads(dest: Ga4Destination, count: int) -> list[dict[str, Any]]:
    """``count`` mapped purchases, each of its own client (so one request each)."""
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return [
        dest.map(
            make_event(
                occurred_at=moment,
                received_at=moment,
                ga_client_id=f"{n}.{n}",
                order_id=f"bench-{n}",
            )
        )
        for n in range(count)
    ]


async def one_run(
    dest: Ga4Destination, batch: list[dict[str, Any]], in_flight: int
) -> tuple[float, float, Counter[str]]:
    """Send every payload; (seconds, CPU seconds, outcome kinds)."""
    batches = [batch[i : i + BATCH] for i in range(0, len(batch), BATCH)]
    kinds: Counter[str] = Counter()
    queue = iter(batches)

    async def worker() -> None:
        for chunk in queue:
            kinds.update(o.kind for o in await dest.send(chunk))

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - wall, time.process_time() - cpu, kinds


async def bench(args: argparse.Namespace, port: int, fake_pid: int | None) -> None:
    http = HttpClient.create(limit=args.limit)
    config = Ga4Config(
        measurement_id="G-BENCH1234",
        api_secret=Secret("bench-ga4-secret"),
        endpoint=f"http://127.0.0.1:{port}",
    )
    dest = Ga4Destination(config, http)
    batch = payloads(dest, args.events)
    await one_run(dest, batch[: BATCH * args.in_flight], args.in_flight)  # warm up connections
    rates, cpus, fakes = [], [], []
    for rep in range(args.reps):
        fake_before = fake_cpu(fake_pid)
        wall, cpu, kinds = await one_run(dest, batch, args.in_flight)
        if kinds != Counter(delivered=len(batch)):
            raise SystemExit(f"not all delivered: {dict(kinds)}")
        rates.append(len(batch) / wall)
        cpus.append(cpu * 1000 / len(batch) * 1000)
        fakes.append((fake_cpu(fake_pid) - fake_before) * 1000 / len(batch) * 1000)
        print(
            f"run {rep + 1}: {rates[-1]:8.0f} events/s  {cpus[-1]:6.1f} CPU ms/1,000 events  "
            f"(fake GA4: {fakes[-1]:6.1f})"
        )
    print(
        f"median of {args.reps}: {statistics.median(rates):8.0f} events/s  "
        f"{statistics.median(cpus):6.1f} CPU ms/1,000 events "
        f"(fake GA4: {statistics.median(fakes):6.1f}) "
        f"({args.events} events, {args.in_flight} batches of {BATCH} in flight, "
        f"aiohttp limit {args.limit})"
    )
    await http.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=4, help="send() calls at a time")
    parser.add_argument("--limit", type=int, default=64, help="the aiohttp session's connections")
    parser.add_argument("--port", type=int, help="a running bench/platforms.py --platform ga4")
    args = parser.parse_args()
    fake = None
    port = args.port
    if port is None:
        port = _free_port()
        fake = subprocess.Popen(
            [sys.executable, str(BENCH / "platforms.py"), "--platform", "ga4", "--port", str(port)],
            stdout=subprocess.DEVNULL,
        )
        _wait_for(port)
    try:
        asyncio.run(bench(args, port, None if fake is None else fake.pid))
    finally:
        if fake is not None:
            fake.terminate()
            fake.wait()


if __name__ == "__main__":
    main()
