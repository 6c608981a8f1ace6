"""Progress of long CLI operations: a bar on a terminal (rich), plain lines otherwise."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Final, TextIO

#: Plain lines (not a terminal) come at most this often, then one when done.
LINE_EVERY_SECS: Final = 1.0

Advance = Callable[[int], None]


@contextlib.contextmanager
def progress(
    label: str, total: int | None = None, *, stream: TextIO | None = None
) -> Iterator[Advance]:
    """Yield ``advance(n)``, told of each ``n`` more items done: on a terminal a bar (a count
    and a spinner when ``total`` is unknown) that disappears when done; otherwise a line
    such as ``replay: 1,500 events`` at most every second, and a last one when done. It
    writes to stderr, so stdout (``--json``) stays one document."""
    out = sys.stderr if stream is None else stream
    if out.isatty():
        with _bar(label, total, out) as tick:
            yield tick
        return
    done, last = 0, time.monotonic()
    of = f" of {total:,}" if total is not None else ""

    def advance(count: int) -> None:
        nonlocal done, last
        done += count
        if time.monotonic() - last >= LINE_EVERY_SECS:
            last = time.monotonic()
            out.write(f"{label}: {done:,}{of}\n")

    yield advance
    out.write(f"{label}: {done:,}{of}, done\n")


@contextlib.contextmanager
def _bar(label: str, total: int | None, out: TextIO) -> Iterator[Advance]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=out), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda count: bar.advance(task, count)
