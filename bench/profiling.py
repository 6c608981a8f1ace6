"""Where Tagless's time goes during a run: py-spy samples of the server, summed by function."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from common import OUT, BenchError

#: Frames in files under these folders are Tagless's own (the rest: libraries). py-spy names a
#: file by its path below the import root: ``decode (router/codec.py:150)``.
OWN: tuple[str, ...] = ("router/", "destinations/")


@contextlib.contextmanager
def sampled(pid: int, name: str, enabled: bool) -> Iterator[Path | None]:
    """Sample every thread of ``pid`` with py-spy while the block runs; yields the raw
    (collapsed stacks) file it writes, or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when it is not on PATH
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    path = OUT / f"profile-{name}.txt"
    argv = [spy, "record", "--format", "raw", "--rate", "200", "--threads", "--nonblocking"]
    argv += ["--subprocesses"]  # ingest and delivery processes too
    argv += ["--output", str(path), "--pid", str(pid)]
    with (OUT / f"profile-{name}.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield path
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summary(path: Path, top: int = 20) -> list[str]:
    """The functions holding the most samples, inclusive (on the stack) and exclusive (on top),
    as markdown lines; idle samples (threads waiting) are left out."""
    if not path.exists():
        return [f"(no profile: {path.name} was not written)"]
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [frame for frame in stack.split(";") if not frame.startswith("thread (")]
        if not frames or _idle(frames[-1]):
            continue
        count = int(count_text)
        total += count
        exclusive[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["(no busy samples)"]
    lines = [
        f"{total:,} busy samples. Inclusive: share of busy samples with the function on the "
        "stack (Tagless's own code only); exclusive: on top of the stack (any code).",
        "",
        "| inclusive | Tagless function | | exclusive | function |",
        "|--:|---|---|--:|---|",
    ]
    own = [(f, n) for f, n in inclusive.most_common() if _own(f)][:top]
    tops = exclusive.most_common(top)
    for i in range(max(len(own), len(tops))):
        left = f"{own[i][1] / total:.0%} | `{_short(own[i][0])}`" if i < len(own) else " | "
        right = f"{tops[i][1] / total:.0%} | `{_short(tops[i][0])}`" if i < len(tops) else " | "
        lines.append(f"| {left} | | {right} |")
    return lines


def _own(frame: str) -> bool:
    where = frame.partition(" (")[2]
    return any(where.startswith(o) or f"/{o}" in where for o in OWN) and "-packages/" not in where


def _idle(frame: str) -> bool:
    """A thread blocked in the event loop's poll or a queue's wait is not using the CPU."""
    return any(
        word in frame
        for word in ("select (", "poll (", "wait (threading", "_worker (concurrent", "run (uvloop")
    )


def _short(frame: str) -> str:
    """``function (path:line)`` with the path from the repository's or a package's root."""
    name, _, where = frame.partition(" (")
    for marker in ("/site-packages/", "/router/", "/destinations/", "/lib/python3"):
        if marker in where:
            where = marker.strip("/") + "/" + where.split(marker, 1)[1]
            break
    return f"{name} ({where}"
